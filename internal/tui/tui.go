// Package tui is the interactive terminal frontend: a Bubble Tea program
// that renders the engine's events as a step list with a live log, asks for
// consent on a review screen, hands the terminal to sudo for its password
// prompt, and ends on a summary that stays in the scrollback.
//
// The engine runs in its own goroutine and talks to the program only
// through [Frontend], which forwards every event with Program.Send; the
// model renders state and never does work itself (the pattern of Bubble
// Tea's package-manager example).
//
// The program runs inline (no alternate screen) so that the final screen
// stays in the terminal's scrollback after exit; every screen is therefore
// kept within the terminal's height.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// ErrRepairRequested is returned by [Run] when the user pressed the repair
// key at the end of a doctor run: the caller should run again in repair
// mode.
var ErrRepairRequested = errors.New("repair requested")

// errNoProgram is returned to the engine when the program has gone away
// (its terminal failed) while the engine waits for an answer.
var errNoProgram = errors.New("the terminal UI has stopped; run again with --plain")

// Options describe the run being shown.
type Options struct {
	// Title heads every screen; "nixbuilder-setup" when empty.
	Title string
	// Mode is the engine's mode: doctor enables the repair key.
	Mode plan.Mode
	// Name, Port and Systems describe the builder on the finish screen.
	Name    string
	Port    int
	Systems []string
	// LogDir is where the full log goes when a run fails; the system's
	// temporary directory when empty.
	LogDir string
	// NoColor turns all colour off (--no-color, NO_COLOR). NO_COLOR in the
	// environment is honoured even when this is false.
	NoColor bool
	// Authorize is the command that gets root privileges ready (sudo -v).
	// It is run with the terminal handed over, so that sudo can ask for
	// the password. Nil when no privileges are needed. It is used as a
	// template: a fresh copy is run each time.
	Authorize *exec.Cmd
}

// Frontend is the engine's side of the program: a plan.Frontend whose
// events and questions are forwarded into the Bubble Tea program.
// Its methods may be called from any goroutine.
type Frontend struct {
	send func(tea.Msg)
	done <-chan struct{} // closed once the program has stopped
}

var _ plan.Frontend = (*Frontend)(nil)

// Event forwards an engine event to the screen.
func (f *Frontend) Event(ev plan.Event) { f.send(eventMsg{ev}) }

// Confirm shows the review screen for a step's changes and waits for the
// user's answer, or for ctx to end (q/Ctrl-C).
func (f *Frontend) Confirm(ctx context.Context, step plan.StepInfo, changes []plan.Change) (plan.Decision, error) {
	reply := make(chan plan.Decision, 1)
	f.send(confirmMsg{step: step, changes: changes, reply: reply})
	select {
	case d := <-reply:
		return d, nil
	case <-ctx.Done():
		return plan.No, ctx.Err()
	case <-f.done:
		return plan.No, errNoProgram
	}
}

// Authorize hands the terminal to the Authorize command of the Options
// (sudo -v) so that it can ask for a password, then takes it back. Wire
// it into plan.Options.Authorize. With no command it does nothing.
func (f *Frontend) Authorize(ctx context.Context) error {
	reply := make(chan error, 1)
	f.send(authorizeMsg{reply: reply})
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return errNoProgram
	}
}

// start runs the engine in a goroutine, reporting its exit code to the
// program once it has returned, and returns a channel with that code.
func start(ctx context.Context, fe *Frontend, run func(context.Context, *Frontend) int) <-chan int {
	exitc := make(chan int, 1)
	go func() {
		exit := run(ctx, fe)
		exitc <- exit
		fe.send(runDoneMsg{exit: exit})
	}()
	return exitc
}

// Run shows the TUI on input/output (normally os.Stdin and os.Stdout, a
// terminal) while run drives the engine with the Frontend it is given, and
// returns run's exit code. q or Ctrl-C cancels the context given to run;
// Run always waits for run to return, so the engine stops at a safe point
// (its exit code is then 130). When the user asks for a repair at the end
// of a doctor run the error is ErrRepairRequested.
func Run(ctx context.Context, opts Options, input io.Reader, output io.Writer,
	run func(ctx context.Context, fe *Frontend) int) (exit int, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := newModel(opts, cancel, output)
	p := tea.NewProgram(m, tea.WithInput(input), tea.WithOutput(output), tea.WithFilter(safeStop))
	done := make(chan struct{})
	fe := &Frontend{send: p.Send, done: done}
	exitc := start(runCtx, fe, run)
	go func() {
		// A cancelled parent (SIGTERM handled by the caller) stops the
		// run the same way as q does.
		select {
		case <-ctx.Done():
			p.Send(cancelMsg{})
		case <-done:
		}
	}()

	final, perr := p.Run()
	close(done)
	if perr != nil {
		cancel()
		return <-exitc, fmt.Errorf("terminal UI: %w (run again with --plain)", perr)
	}
	exit = <-exitc
	if fm, ok := final.(*model); ok && fm.repair {
		return exit, ErrRepairRequested
	}
	return exit, nil
}

// safeStop turns the signals Bubble Tea catches itself (SIGINT when the
// terminal is not in raw mode, SIGTERM) into a safe stop instead of an
// immediate exit that would abandon the engine mid-step.
func safeStop(m tea.Model, msg tea.Msg) tea.Msg {
	switch msg.(type) {
	case tea.InterruptMsg:
		return cancelMsg{}
	case tea.QuitMsg:
		if mm, ok := m.(*model); ok && !mm.quitting {
			return cancelMsg{}
		}
	}
	return msg
}

// noColorEnv reports whether NO_COLOR asks for no colour (https://no-color.org).
func noColorEnv() bool { return os.Getenv("NO_COLOR") != "" }
