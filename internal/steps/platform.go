package steps

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixversion"
)

// The few things steps ask of the operating system, chosen by env.GOOS so
// that the macOS paths are testable on Linux with a fake macos.Probe. The
// real macOS commands live in the macos package's _darwin.go files.

// daemonRunning reports whether a nix-daemon runs; ok is false when that
// cannot be told.
func daemonRunning(ctx context.Context, env *Env, _ nixversion.InstallFacts) (running, ok bool) {
	if env.GOOS == "darwin" {
		svc, err := env.Mac.NixDaemon(ctx)
		if err != nil {
			return false, false
		}
		return svc.Running(), true
	}
	_, err := nixversion.LinuxProc().FindDaemon()
	if err == nil {
		return true, true
	}
	if errors.Is(err, nixversion.ErrNoDaemon) {
		return false, true
	}
	return false, false
}

// daemonProcess finds the running daemon and when it started.
func daemonProcess(ctx context.Context, env *Env, _ nixversion.Install) (int, time.Time, error) {
	if env.GOOS == "darwin" {
		svc, err := env.Mac.NixDaemon(ctx)
		if err != nil {
			return 0, time.Time{}, err
		}
		if !svc.Running() {
			return 0, time.Time{}, fmt.Errorf("launchd service %s is %s", svc.Label, orWord(svc.State, "not loaded"))
		}
		t, err := env.Mac.DaemonStarted(svc)
		return svc.PID, t, err
	}
	p := nixversion.LinuxProc()
	pid, err := p.FindDaemon()
	if err != nil {
		return 0, time.Time{}, err
	}
	t, err := p.StartTime(pid)
	return pid, t, err
}

// restartCommand is the command that restarts the daemon.
func restartCommand(env *Env, inst nixversion.Install) []string {
	if env.GOOS == "darwin" {
		label := macos.LabelNixDaemon
		if inst.Kind == nixversion.KindDeterminate {
			label = macos.LabelDeterminateDaemon
		}
		return macos.KickstartCommand(label)
	}
	return nixversion.SystemdRestartCommand()
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
