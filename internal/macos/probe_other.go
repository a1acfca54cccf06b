//go:build !darwin

package macos

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Supported reports whether this build runs on macOS, where the probes
// work.
func Supported() bool { return false }

// NewProbe returns a Probe that answers ErrNotMacOS to everything without
// starting a process or touching a file, so a macOS-only check can never
// run a command on Linux.
func NewProbe() *Probe {
	return &Probe{
		Run: refusingRunner{},
		Stat: func(name string) (fs.FileInfo, error) {
			return nil, fmt.Errorf("stat %s: %w", name, ErrNotMacOS)
		},
		StartTime: func(pid int) (time.Time, error) {
			return time.Time{}, fmt.Errorf("start time of pid %d: %w", pid, ErrNotMacOS)
		},
	}
}

// refusingRunner is the runner of NewProbe outside macOS: it never starts a
// process, so no macOS-only command can run on Linux by mistake.
type refusingRunner struct{}

func (refusingRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	return nil, fmt.Errorf("%s: %w", strings.Join(append([]string{name}, args...), " "), ErrNotMacOS)
}
