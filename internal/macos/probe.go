package macos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Probe asks the Mac about itself. All commands go through Run; files are
// looked at through Stat; a process's start time comes from StartTime. Tests
// fill the fields with fakes; NewProbe fills them for the real machine.
type Probe struct {
	Run Runner
	// Stat is os.Stat when nil.
	Stat func(name string) (fs.FileInfo, error)
	// StartTime returns when process pid started; NewProbe asks the kernel
	// (sysctl kern.proc.pid) on macOS.
	StartTime func(pid int) (time.Time, error)
}

func (p *Probe) stat(name string) (fs.FileInfo, error) {
	if p.Stat != nil {
		return p.Stat(name)
	}
	return os.Stat(name)
}

func (p *Probe) sysctl(ctx context.Context, name string) ([]byte, error) {
	return p.Run.Output(ctx, "sysctl", "-n", name)
}

// SWVers runs `sw_vers`.
func (p *Probe) SWVers(ctx context.Context) (SWVers, error) {
	out, err := p.Run.Output(ctx, "sw_vers")
	if err != nil {
		return SWVers{}, fmt.Errorf("read the macOS version: %w", err)
	}
	return ParseSWVers(out)
}

// CPU describes the processor.
type CPU struct {
	// AppleSilicon is hw.optional.arm64: true on Apple Silicon even when
	// this process runs translated by Rosetta.
	AppleSilicon bool
	// NCPU is hw.ncpu.
	NCPU int
	// Brand is machdep.cpu.brand_string: "Apple M1 Pro",
	// "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz".
	Brand string
	// Translated is sysctl.proc_translated: this very process is an x86_64
	// binary running under Rosetta (the amd64 build on an Apple Silicon Mac).
	Translated bool
}

// CPU runs `sysctl -n` for hw.optional.arm64, hw.ncpu,
// machdep.cpu.brand_string and sysctl.proc_translated.
func (p *Probe) CPU(ctx context.Context) (CPU, error) {
	var c CPU
	var err error
	if c.AppleSilicon, err = p.sysctlOptionalBool(ctx, "hw.optional.arm64"); err != nil {
		return CPU{}, err
	}
	out, err := p.sysctl(ctx, "hw.ncpu")
	if err != nil {
		return CPU{}, fmt.Errorf("read the CPU count: %w", err)
	}
	if c.NCPU, err = ParseSysctlInt(out); err != nil {
		return CPU{}, err
	}
	// The brand string is for display only: a failure leaves it empty.
	if out, err := p.sysctl(ctx, "machdep.cpu.brand_string"); err == nil {
		c.Brand = ParseSysctlString(out)
	}
	if c.Translated, err = p.sysctlOptionalBool(ctx, "sysctl.proc_translated"); err != nil {
		return CPU{}, err
	}
	return c, nil
}

// sysctlOptionalBool reads a 0/1 sysctl whose absence means false.
func (p *Probe) sysctlOptionalBool(ctx context.Context, name string) (bool, error) {
	out, err := p.sysctl(ctx, name)
	if err != nil {
		if text, ok := commandOutput(err); ok && IsUnknownOID(text, name) {
			return false, nil
		}
		return false, fmt.Errorf("read sysctl %s: %w", name, err)
	}
	return ParseSysctlBool(out)
}

// Rosetta checks for the Rosetta runtime and runs RosettaProbeCommand. A
// failing probe is a finding, not an error; the error is for a runtime
// file that cannot be checked or a probe that could not be started.
func (p *Probe) Rosetta(ctx context.Context) (RosettaStatus, error) {
	var s RosettaStatus
	switch _, err := p.stat(RosettaRuntime); {
	case err == nil:
		s.RuntimePresent = true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return RosettaStatus{}, fmt.Errorf("check %s: %w", RosettaRuntime, err)
	}
	argv := RosettaProbeCommand()
	_, err := p.Run.Output(ctx, argv[0], argv[1:]...)
	if err == nil {
		s.Runs = true
		return s, nil
	}
	text, ok := commandOutput(err)
	if !ok {
		return RosettaStatus{}, fmt.Errorf("check Rosetta: %w", err)
	}
	s.ProbeOutput = text
	return s, nil
}

// Launchd runs `launchctl print system/<label>`. A missing service is
// Found=false, not an error.
func (p *Probe) Launchd(ctx context.Context, label string) (LaunchdService, error) {
	argv := PrintCommand(label)
	out, err := p.Run.Output(ctx, argv[0], argv[1:]...)
	if err != nil {
		text, ok := commandOutput(err)
		if !ok {
			return LaunchdService{}, fmt.Errorf("ask launchd about %s: %w", label, err)
		}
		s, perr := ParseLaunchctlPrint([]byte(text))
		if perr != nil || s.Found {
			return LaunchdService{}, fmt.Errorf("ask launchd about %s: %w", label, err)
		}
		s.Label = label
		return s, nil
	}
	return ParseLaunchctlPrint(out)
}

// NixDaemon looks for the Nix daemon under each of DaemonLabels and returns
// the first service that is running, else the first that is loaded, else a
// Found=false service for LabelNixDaemon.
func (p *Probe) NixDaemon(ctx context.Context) (LaunchdService, error) {
	var loaded []LaunchdService
	for _, label := range DaemonLabels() {
		s, err := p.Launchd(ctx, label)
		if err != nil {
			return LaunchdService{}, err
		}
		if s.Running() {
			return s, nil
		}
		if s.Found {
			loaded = append(loaded, s)
		}
	}
	if len(loaded) > 0 {
		return loaded[0], nil
	}
	return LaunchdService{Label: LabelNixDaemon}, nil
}

// DaemonStarted returns when the service's process started; launchctl
// print has no start time, so the pid is taken to StartTime.
func (p *Probe) DaemonStarted(s LaunchdService) (time.Time, error) {
	if !s.Running() {
		return time.Time{}, fmt.Errorf("launchd service %s is not running", s.Label)
	}
	if p.StartTime == nil {
		return time.Time{}, errors.New("no way to read process start times on this system")
	}
	t, err := p.StartTime(s.PID)
	if err != nil {
		return time.Time{}, fmt.Errorf("start time of %s (pid %d): %w", s.Label, s.PID, err)
	}
	return t, nil
}
