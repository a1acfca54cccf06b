package tui

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Messages into the program. Everything from the engine arrives as one of
// these, sent by Frontend.
type (
	eventMsg   struct{ ev plan.Event }
	confirmMsg struct {
		step    plan.StepInfo
		changes []plan.Change
		reply   chan<- plan.Decision
	}
	authorizeMsg     struct{ reply chan<- error }
	authorizeDoneMsg struct {
		err   error
		reply chan<- error
	}
	runDoneMsg    struct{ exit int }
	cancelMsg     struct{}
	logWrittenMsg struct {
		path string
		err  error
	}
)

// stepState is what the step list shows for a step.
type stepState int

const (
	statePending stepState = iota
	stateChecking
	stateOK
	stateNeedsChange
	stateApplying
	stateDone
	stateBlocked
	stateFailed
	stateSkipped
)

// stateFor maps a step event's status to the state shown.
func stateFor(status string) stepState {
	switch status {
	case plan.StatusChecking:
		return stateChecking
	case plan.StatusApplying:
		return stateApplying
	case plan.OK.String():
		return stateOK
	case plan.NeedsApply.String():
		return stateNeedsChange
	case plan.Applied.String():
		return stateDone
	case plan.Blocked.String():
		return stateBlocked
	case plan.Failed.String():
		return stateFailed
	case plan.Skipped.String():
		return stateSkipped
	}
	return statePending
}

func (s stepState) active() bool { return s == stateChecking || s == stateApplying }

type stepView struct {
	id, title             string
	state                 stepState
	detail, hint, warning string
}

type logLine struct{ id, text string }

// Defaults when the output is not a terminal and reports no size.
const (
	defaultWidth  = 80
	defaultHeight = 24
	maxLogHeight  = 10
)

// model is the program's state. It is a pointer so that the engine-facing
// reply channels and the final state (read by Run) are shared.
type model struct {
	opts   Options
	cancel context.CancelFunc
	st     styles
	keys   keyMap
	help   help.Model
	spin   spinner.Model
	// static renders the spinner as its first frame and never ticks, so
	// that tests see a deterministic screen.
	static bool
	now    func() time.Time

	width, height int

	mode    plan.Mode
	started bool
	steps   []*stepView
	index   map[string]int

	log    []logLine
	logVP  viewport.Model
	follow bool // the log viewport sticks to the newest line

	confirm  *confirmMsg
	reviewVP viewport.Model
	review   int // lines of review content

	authorizing bool

	result     *plan.Event
	runDone    bool
	exit       int
	logPending bool
	logPath    string
	logErr     error

	cancelled bool // the user asked to stop
	repair    bool // the user asked for repair at the end of doctor
	quitting  bool
}

func newModel(opts Options, cancel context.CancelFunc, out io.Writer) *model {
	st, r := newStyles(out, opts.NoColor || noColorEnv())
	m := &model{
		opts:   opts,
		cancel: cancel,
		st:     st,
		keys:   newKeyMap(),
		help:   newHelp(r),
		spin:   spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.accent)),
		now:    time.Now,
		mode:   opts.Mode,
		index:  map[string]int{},
		follow: true,
		logVP:  viewport.New(defaultWidth, 0),
	}
	m.reviewVP = viewport.New(defaultWidth, 0)
	return m
}

// Init starts the spinner.
func (m *model) Init() tea.Cmd {
	if m.static {
		return nil
	}
	return m.spin.Tick
}

func (m *model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	return w, h
}

// Update applies one message.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.layout()
	return m, cmd
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
	case spinner.TickMsg:
		if m.static || m.quitting {
			return nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	case tea.KeyMsg:
		return m.key(msg)
	case cancelMsg:
		m.stop()
	case eventMsg:
		m.event(msg.ev)
	case confirmMsg:
		if m.cancelled {
			return nil // Confirm returns through the cancelled context
		}
		m.confirm = &msg
		m.reviewVP.GotoTop()
	case authorizeMsg:
		if m.opts.Authorize == nil {
			msg.reply <- nil
			return nil
		}
		m.authorizing = true
		reply := msg.reply
		return tea.ExecProcess(cloneCmd(m.opts.Authorize), func(err error) tea.Msg {
			return authorizeDoneMsg{err: err, reply: reply}
		})
	case authorizeDoneMsg:
		m.authorizing = false
		if msg.err != nil {
			msg.err = fmt.Errorf("%s: %w", strings.Join(m.opts.Authorize.Args, " "), msg.err)
		}
		msg.reply <- msg.err
	case runDoneMsg:
		m.runDone = true
		m.exit = msg.exit
		if m.exit != 0 && len(m.log) > 0 {
			m.logPending = true
			return m.writeLog()
		}
		return m.maybeQuit()
	case logWrittenMsg:
		m.logPending = false
		m.logPath, m.logErr = msg.path, msg.err
		return m.maybeQuit()
	}
	return nil
}

func (m *model) key(msg tea.KeyMsg) tea.Cmd {
	if m.runDone {
		switch {
		case m.waitingForRepair() && key.Matches(msg, m.keys.Repair):
			m.repair = true
			return m.quit()
		case key.Matches(msg, m.keys.Close):
			return m.quit()
		}
		return nil
	}
	if key.Matches(msg, m.keys.Quit) {
		m.stop()
		return nil
	}
	if m.confirm != nil {
		answer := func(d plan.Decision) tea.Cmd {
			m.confirm.reply <- d
			m.confirm = nil
			return nil
		}
		switch {
		case key.Matches(msg, m.keys.Yes):
			return answer(plan.Yes)
		case key.Matches(msg, m.keys.All):
			return answer(plan.YesAll)
		case key.Matches(msg, m.keys.No):
			return answer(plan.No)
		}
		var cmd tea.Cmd
		m.reviewVP, cmd = m.reviewVP.Update(msg)
		return cmd
	}
	if key.Matches(msg, m.keys.Scroll) {
		var cmd tea.Cmd
		m.logVP, cmd = m.logVP.Update(msg)
		m.follow = m.logVP.AtBottom()
		return cmd
	}
	return nil
}

// stop cancels the run; the program ends when the engine has returned.
func (m *model) stop() {
	if m.cancelled || m.runDone {
		return
	}
	m.cancelled = true
	m.confirm = nil
	m.cancel()
}

func (m *model) event(ev plan.Event) {
	switch ev.Type {
	case plan.EventStart:
		m.started = true
		if ev.Command != "" {
			m.mode = ev.Command
		}
		for _, s := range ev.Steps {
			m.stepFor(s.ID, s.Title)
		}
	case plan.EventStep:
		s := m.stepFor(ev.ID, ev.Title)
		s.state = stateFor(ev.Status)
		if s.state.active() {
			s.hint = ""
			return // keep the last detail until the phase has a result
		}
		s.detail, s.hint, s.warning = ev.Detail, ev.Hint, ev.Warning
	case plan.EventLog:
		m.log = append(m.log, logLine{id: ev.ID, text: cleanLine(ev.Line)})
	case plan.EventResult:
		r := ev
		m.result = &r
	}
}

func (m *model) stepFor(id, title string) *stepView {
	if i, ok := m.index[id]; ok {
		if title != "" {
			m.steps[i].title = title
		}
		return m.steps[i]
	}
	if title == "" {
		title = id
	}
	s := &stepView{id: id, title: title}
	m.index[id] = len(m.steps)
	m.steps = append(m.steps, s)
	return s
}

// cleanLine makes a line of build output safe to show: only the last
// carriage-return segment (progress bars redraw with \r), no escape
// sequences, tabs expanded.
func cleanLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		s = s[i+1:]
	}
	s = ansi.Strip(s)
	s = strings.ReplaceAll(s, "\t", "    ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// waitingForRepair reports whether a finished doctor run waits for r.
func (m *model) waitingForRepair() bool {
	return m.runDone && m.mode == plan.Doctor && !m.cancelled &&
		(m.exit == plan.ExitFailed || m.exit == plan.ExitBlocked)
}

func (m *model) maybeQuit() tea.Cmd {
	if !m.runDone || m.logPending || m.waitingForRepair() {
		return nil
	}
	return m.quit()
}

func (m *model) quit() tea.Cmd {
	m.quitting = true
	return tea.Quit
}

// writeLog saves the full log, so that a failure can be looked into after
// the screen is gone.
func (m *model) writeLog() tea.Cmd {
	dir := m.opts.LogDir
	if dir == "" {
		dir = os.TempDir()
	}
	mode := string(m.mode)
	if mode == "" {
		mode = "run"
	}
	path := filepath.Join(dir, fmt.Sprintf("nixbuilder-setup-%s-%s.log", mode, m.now().Format("20060102-150405")))
	var b strings.Builder
	for _, l := range m.log {
		fmt.Fprintf(&b, "[%s] %s\n", l.id, l.text)
	}
	data := []byte(b.String())
	return func() tea.Msg {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return logWrittenMsg{err: fmt.Errorf("create log directory: %w", err)}
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return logWrittenMsg{err: fmt.Errorf("write log: %w", err)}
		}
		return logWrittenMsg{path: path}
	}
}

// cloneCmd copies a command template: an exec.Cmd runs only once.
func cloneCmd(c *exec.Cmd) *exec.Cmd {
	n := exec.Command(c.Path)
	if len(c.Args) > 0 {
		n.Args = append([]string(nil), c.Args...)
	}
	n.Env = c.Env
	n.Dir = c.Dir
	return n
}
