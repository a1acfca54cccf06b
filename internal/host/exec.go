package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Cmd is a command to run: always an argument list, never a shell line.
type Cmd struct {
	Args  []string
	Env   []string // added to the tool's environment
	Stdin []byte
	Root  bool // run as root: directly when already root, else through sudo -n
	// Stderr, when set, also receives the command's stderr as it comes
	// (a build's log lines); errors carry its tail either way.
	Stderr io.Writer
}

// Runner runs commands. Steps get one so that tests can replace it.
type Runner interface {
	Run(ctx context.Context, c Cmd) (stdout []byte, err error)
}

// CmdError is a failed command, with what a user needs to see: the command
// line, the exit status and the tail of its stderr.
type CmdError struct {
	Args   []string
	Exit   int // -1 when it did not start or was killed
	Stderr string
	Err    error
}

func (e *CmdError) Error() string {
	line := quote(e.Args)
	msg := fmt.Sprintf("`%s`", line)
	if e.Exit >= 0 {
		msg += fmt.Sprintf(" exited %d", e.Exit)
	} else {
		msg += ": " + e.Err.Error()
	}
	if t := strings.TrimSpace(e.Stderr); t != "" {
		msg += ": " + t
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func quote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// Exec is the real Runner. Every root action of the tool goes through it:
// it is the one privileged choke point.
type Exec struct {
	IsRoot bool   // already root: run root commands directly
	Sudo   string // the sudo program; "sudo" when empty
}

// NewExec returns a Runner for this process.
func NewExec() *Exec { return &Exec{IsRoot: os.Geteuid() == 0} }

// Argv returns the argument list that runs c: with sudo -n in front when c
// needs root and the tool is not root.
func (x *Exec) Argv(c Cmd) []string {
	if !c.Root || x.IsRoot {
		return c.Args
	}
	sudo := x.Sudo
	if sudo == "" {
		sudo = "sudo"
	}
	argv := []string{sudo, "-n"}
	if len(c.Env) > 0 {
		// sudo drops the environment; env(1) puts ours back, still without a shell.
		argv = append(argv, "env")
		argv = append(argv, c.Env...)
	} else {
		argv = append(argv, "--")
	}
	return append(argv, c.Args...)
}

// Run runs c and returns its stdout. A failure is a *CmdError.
func (x *Exec) Run(ctx context.Context, c Cmd) ([]byte, error) {
	argv := x.Argv(c)
	if len(argv) == 0 {
		return nil, errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A killed command's children (ssh under nix) may hold its pipes
	// open; stop waiting for them soon after.
	cmd.WaitDelay = 5 * time.Second
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, c.Stderr)
	}
	err := cmd.Run()
	if err != nil {
		ce := &CmdError{Args: c.Args, Exit: -1, Stderr: Tail(stderr.String(), 15), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			ce.Exit = ee.ExitCode()
		}
		if ctx.Err() != nil {
			ce.Err = ctx.Err()
			ce.Exit = -1
		}
		return stdout.Bytes(), ce
	}
	return stdout.Bytes(), nil
}

// AuthorizeCmd returns the command that asks for the sudo password once,
// on the terminal (sudo -v), or nil when the tool is root already.
func (x *Exec) AuthorizeCmd() *exec.Cmd {
	if x.IsRoot {
		return nil
	}
	sudo := x.Sudo
	if sudo == "" {
		sudo = "sudo"
	}
	return exec.Command(sudo, "-v", "-p", "nixbuilder-setup needs root to change system files; password for %u: ")
}

// CheckNonInteractive makes sure root commands can run without a prompt
// (sudo -n true); otherwise it says how to go on.
func (x *Exec) CheckNonInteractive(ctx context.Context) error {
	if x.IsRoot {
		return nil
	}
	if _, err := x.Run(ctx, Cmd{Args: []string{"true"}, Root: true}); err != nil {
		return fmt.Errorf("root privileges are needed and sudo would ask for a password, but there is no terminal: run `sudo -v` first, or run from a terminal (%w)", err)
	}
	return nil
}
