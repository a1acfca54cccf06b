//go:build !darwin

package macos

import (
	"context"
	"errors"
	"testing"
)

// TestNewProbeRefuses checks that outside macOS every probe answers
// ErrNotMacOS and that nothing is executed: the runner is the refusing one.
func TestNewProbeRefuses(t *testing.T) {
	if Supported() {
		t.Fatal("Supported() = true outside macOS")
	}
	p := NewProbe()
	if _, ok := p.Run.(refusingRunner); !ok {
		t.Fatalf("runner is %T, want refusingRunner", p.Run)
	}
	ctx := context.Background()
	if _, err := p.SWVers(ctx); !errors.Is(err, ErrNotMacOS) {
		t.Errorf("SWVers: %v", err)
	}
	if _, err := p.CPU(ctx); !errors.Is(err, ErrNotMacOS) {
		t.Errorf("CPU: %v", err)
	}
	if _, err := p.Rosetta(ctx); !errors.Is(err, ErrNotMacOS) {
		t.Errorf("Rosetta: %v", err)
	}
	if _, err := p.NixDaemon(ctx); !errors.Is(err, ErrNotMacOS) {
		t.Errorf("NixDaemon: %v", err)
	}
	if _, err := p.DaemonStarted(LaunchdService{Label: LabelNixDaemon, Found: true, PID: 1}); !errors.Is(err, ErrNotMacOS) {
		t.Errorf("DaemonStarted: %v", err)
	}
}
