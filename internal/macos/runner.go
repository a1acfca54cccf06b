// Package macos knows the Mac the tool runs on: its version (sw_vers), CPU
// (sysctl), Rosetta, the Nix daemon's launchd service (launchctl print) and
// Docker Desktop's settings file, plus the few system commands the steps
// run there (installing Rosetta, restarting the daemon).
//
// Every parser is a pure function over a command's output and is tested on
// every OS. The probes (Probe) run commands only through an injected Runner,
// so steps are tested with a fake on any OS; on a real machine NewProbe
// gives a Probe that execs the commands on macOS and, elsewhere, refuses
// with ErrNotMacOS without running anything.
package macos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs a command and returns its standard output. A command that
// fails returns a *CommandError (or wraps one) so callers can read its
// stderr and exit code.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// CommandError is a command that ran and failed, or could not start.
type CommandError struct {
	Name   string
	Args   []string
	Stdout []byte
	Stderr []byte
	// ExitCode is the exit status, -1 when the command did not start or
	// was killed.
	ExitCode int
	Err      error
}

// Error names the command and quotes its stderr, which is where
// softwareupdate, launchctl and sysctl say what went wrong.
func (e *CommandError) Error() string {
	cmd := strings.Join(append([]string{e.Name}, e.Args...), " ")
	msg := strings.TrimSpace(string(e.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(e.Stdout))
	}
	if msg == "" {
		return fmt.Sprintf("%s: %v", cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", cmd, e.Err, msg)
}

// Unwrap returns the underlying exec error.
func (e *CommandError) Unwrap() error { return e.Err }

// Output returns what the command printed on both streams, for messages and
// for parsers of error output ("Could not find service").
func (e *CommandError) Output() string {
	return strings.TrimSpace(string(e.Stdout) + "\n" + string(e.Stderr))
}

// ExecRunner runs real commands with os/exec, never through a shell.
type ExecRunner struct{}

// Output runs name with args and returns its stdout; on failure the error
// is a *CommandError holding stdout, stderr and the exit code.
func (ExecRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	return stdout.Bytes(), &CommandError{Name: name, Args: args, Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code, Err: err}
}

// ErrNotMacOS is returned by every probe on a system that is not macOS.
var ErrNotMacOS = errors.New("not macOS")

// commandOutput returns the text of a failed command (stdout and stderr)
// when err carries it.
func commandOutput(err error) (string, bool) {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.Output(), true
	}
	return "", false
}
