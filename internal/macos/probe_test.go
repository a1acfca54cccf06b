package macos

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

func statPresent(present ...string) func(string) (fs.FileInfo, error) {
	return func(name string) (fs.FileInfo, error) {
		for _, p := range present {
			if p == name {
				return nil, nil
			}
		}
		return nil, fs.ErrNotExist
	}
}

func TestProbeCPU(t *testing.T) {
	intelOID := string(fixture(t, "sysctl/hw.optional.arm64-intel.stderr.txt"))
	tests := []struct {
		name    string
		answers map[string]fakeAnswer
		want    CPU
		wantErr bool
	}{
		{"Apple Silicon", map[string]fakeAnswer{
			"sysctl -n hw.optional.arm64":        {out: string(fixture(t, "sysctl/hw.optional.arm64-apple-silicon.txt"))},
			"sysctl -n hw.ncpu":                  {out: string(fixture(t, "sysctl/hw.ncpu-m1-max.txt"))},
			"sysctl -n machdep.cpu.brand_string": {out: string(fixture(t, "sysctl/machdep.cpu.brand_string-m1-pro.txt"))},
			"sysctl -n sysctl.proc_translated":   {out: "0\n"},
		}, CPU{AppleSilicon: true, NCPU: 10, Brand: "Apple M1 Pro"}, false},
		{"amd64 build under Rosetta", map[string]fakeAnswer{
			"sysctl -n hw.optional.arm64":        {out: "1\n"},
			"sysctl -n hw.ncpu":                  {out: "8\n"},
			"sysctl -n machdep.cpu.brand_string": {out: "Apple M2\n"},
			"sysctl -n sysctl.proc_translated":   {out: "1\n"},
		}, CPU{AppleSilicon: true, NCPU: 8, Brand: "Apple M2", Translated: true}, false},
		{"Intel", map[string]fakeAnswer{
			"sysctl -n hw.optional.arm64":        {stderr: intelOID, code: 1},
			"sysctl -n hw.ncpu":                  {out: "12\n"},
			"sysctl -n machdep.cpu.brand_string": {out: string(fixture(t, "sysctl/machdep.cpu.brand_string-intel.txt"))},
			"sysctl -n sysctl.proc_translated":   {out: "0\n"},
		}, CPU{NCPU: 12, Brand: "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz"}, false},
		{"sysctl fails otherwise: an error, never Intel", map[string]fakeAnswer{
			"sysctl -n hw.optional.arm64": {stderr: "sysctl: Operation not permitted", code: 1},
		}, CPU{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Probe{Run: &fakeRunner{t: t, answers: tt.answers}}
			got, err := p.CPU(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestProbeSWVers(t *testing.T) {
	p := &Probe{Run: &fakeRunner{t: t, answers: map[string]fakeAnswer{
		"sw_vers": {out: string(fixture(t, "sw_vers/macos-15.6-sequoia.txt"))},
	}}}
	v, err := p.SWVers(context.Background())
	if err != nil || v.ProductVersion != "15.6" {
		t.Errorf("SWVers = %+v, %v", v, err)
	}
}

func TestProbeRosetta(t *testing.T) {
	badCPU := string(fixture(t, "arch/no-rosetta.stderr.txt"))
	tests := []struct {
		name      string
		present   []string
		arch      fakeAnswer
		installed bool
		detail    string
	}{
		{"installed", []string{RosettaRuntime}, fakeAnswer{}, true, "runs x86_64"},
		{"missing", nil, fakeAnswer{stderr: badCPU, code: 1}, false, "not installed"},
		{"runtime left, does not run", []string{RosettaRuntime}, fakeAnswer{stderr: badCPU, code: 1}, false, "Bad CPU type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := &fakeRunner{t: t, answers: map[string]fakeAnswer{"arch -arch x86_64 /usr/bin/true": tt.arch}}
			p := &Probe{Run: run, Stat: statPresent(tt.present...)}
			s, err := p.Rosetta(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.Installed() != tt.installed || !strings.Contains(s.Detail(), tt.detail) {
				t.Errorf("Installed=%v Detail=%q, want %v and %q", s.Installed(), s.Detail(), tt.installed, tt.detail)
			}
		})
	}
}

func TestProbeNixDaemon(t *testing.T) {
	missing := func(label string) fakeAnswer {
		return fakeAnswer{stderr: "Bad request.\nCould not find service \"" + label + "\" in domain for system\n", code: 113}
	}
	running := string(fixture(t, "launchctl/running-nix-darwin-2.34.7.txt"))
	determinate := strings.ReplaceAll(running, "org.nixos.nix-daemon", "systems.determinate.nix-daemon")
	tests := []struct {
		name    string
		answers map[string]fakeAnswer
		label   string
		running bool
	}{
		{"upstream running", map[string]fakeAnswer{
			"launchctl print system/org.nixos.nix-daemon": {out: running},
		}, LabelNixDaemon, true},
		{"Determinate running", map[string]fakeAnswer{
			"launchctl print system/org.nixos.nix-daemon":           missing(LabelNixDaemon),
			"launchctl print system/systems.determinate.nix-daemon": {out: determinate},
		}, LabelDeterminateDaemon, true},
		{"no daemon", map[string]fakeAnswer{
			"launchctl print system/org.nixos.nix-daemon":           missing(LabelNixDaemon),
			"launchctl print system/systems.determinate.nix-daemon": missing(LabelDeterminateDaemon),
		}, LabelNixDaemon, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Probe{Run: &fakeRunner{t: t, answers: tt.answers}}
			s, err := p.NixDaemon(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.Label != tt.label || s.Running() != tt.running {
				t.Errorf("got %+v, want label %s running %v", s, tt.label, tt.running)
			}
		})
	}

	// launchctl failing for another reason is an error, not "missing".
	p := &Probe{Run: &fakeRunner{t: t, answers: map[string]fakeAnswer{
		"launchctl print system/org.nixos.nix-daemon": {stderr: "Unrecognized target specifier.", code: 1},
	}}}
	if _, err := p.NixDaemon(context.Background()); err == nil {
		t.Error("unexpected launchctl failure: want an error")
	}
}

func TestDaemonStarted(t *testing.T) {
	s, err := ParseLaunchctlPrint(fixture(t, "launchctl/running-nix-darwin-2.34.7.txt"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	p := &Probe{StartTime: func(pid int) (time.Time, error) {
		if pid != 383 {
			t.Errorf("StartTime(%d), want the service's pid 383", pid)
		}
		return at, nil
	}}
	got, err := p.DaemonStarted(s)
	if err != nil || !got.Equal(at) {
		t.Errorf("DaemonStarted = %v, %v", got, err)
	}
	if _, err := p.DaemonStarted(LaunchdService{Label: LabelNixDaemon}); err == nil {
		t.Error("DaemonStarted of a stopped service: want an error")
	}
}

func TestExecRunner(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Missing(t, "no sh on PATH")
	}
	out, err := ExecRunner{}.Output(context.Background(), sh, "-c", "echo out; echo err >&2; exit 3")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CommandError", err)
	}
	if string(out) != "out\n" || ce.ExitCode != 3 || strings.TrimSpace(string(ce.Stderr)) != "err" {
		t.Errorf("out=%q code=%d stderr=%q", out, ce.ExitCode, ce.Stderr)
	}
	if !strings.Contains(err.Error(), "err") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Error() = %q should carry stderr and the status", err.Error())
	}
	out, err = ExecRunner{}.Output(context.Background(), sh, "-c", "echo fine")
	if err != nil || string(out) != "fine\n" {
		t.Errorf("success: %q, %v", out, err)
	}
	_, err = ExecRunner{}.Output(context.Background(), "/nonexistent/program")
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Errorf("missing program: %v", err)
	}
}
