package macos

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// fakeRunner answers commands from a table keyed by the joined argv and
// records what was run. An unknown command fails the test: a probe must run
// only what it is expected to.
type fakeRunner struct {
	t       *testing.T
	answers map[string]fakeAnswer
	ran     []string
}

type fakeAnswer struct {
	out    string
	stderr string
	code   int // non-zero: the command fails with a *CommandError
}

func (f *fakeRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	key := strings.Join(append([]string{name}, args...), " ")
	f.ran = append(f.ran, key)
	a, ok := f.answers[key]
	if !ok {
		f.t.Errorf("unexpected command %q", key)
		return nil, &CommandError{Name: name, Args: args, ExitCode: 127, Err: errExit(127)}
	}
	if a.code != 0 {
		return []byte(a.out), &CommandError{Name: name, Args: args, Stdout: []byte(a.out), Stderr: []byte(a.stderr), ExitCode: a.code, Err: errExit(a.code)}
	}
	return []byte(a.out), nil
}

type errExit int

func (e errExit) Error() string { return "exit status " + strconv.Itoa(int(e)) }
