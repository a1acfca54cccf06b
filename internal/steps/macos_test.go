package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixversion"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// fakeMac answers the macOS probe's commands from testdata recordings.
// An unknown command fails the test.
type fakeMac struct {
	t       *testing.T
	mu      sync.Mutex
	answers map[string]fakeMacAnswer
	files   map[string]bool // paths Stat finds
	starts  map[int]time.Time
	ran     []string
}

type fakeMacAnswer struct {
	out    string
	stderr string
	code   int
}

func (f *fakeMac) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	argv := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.ran = append(f.ran, argv)
	a, ok := f.answers[argv]
	f.mu.Unlock()
	if !ok {
		f.t.Errorf("macOS probe ran an unexpected command: %s", argv)
		return nil, &macos.CommandError{Name: name, Args: args, ExitCode: -1, Err: errors.New("not found")}
	}
	if a.code != 0 {
		return []byte(a.out), &macos.CommandError{Name: name, Args: args, Stdout: []byte(a.out), Stderr: []byte(a.stderr),
			ExitCode: a.code, Err: fmt.Errorf("exit status %d", a.code)}
	}
	return []byte(a.out), nil
}

func (f *fakeMac) set(argv string, a fakeMacAnswer) {
	f.mu.Lock()
	f.answers[argv] = a
	f.mu.Unlock()
}

type fakeFileInfo struct{ name string }

func (i fakeFileInfo) Name() string       { return i.name }
func (i fakeFileInfo) Size() int64        { return 1 }
func (i fakeFileInfo) Mode() fs.FileMode  { return 0o644 }
func (i fakeFileInfo) ModTime() time.Time { return time.Time{} }
func (i fakeFileInfo) IsDir() bool        { return false }
func (i fakeFileInfo) Sys() any           { return nil }

func (f *fakeMac) stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files[name] {
		return fakeFileInfo{filepath.Base(name)}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (f *fakeMac) startTime(pid int) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.starts[pid]
	if !ok {
		return time.Time{}, fmt.Errorf("no process %d", pid)
	}
	return t, nil
}

// fixture reads a file of testdata/.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const unknownOID = 1

// macMachine is a re-rooted darwin machine whose probe answers like an
// Apple Silicon Mac (appleSilicon) or an Intel one.
func macMachine(t *testing.T, appleSilicon bool) (*testMachine, *fakeMac) {
	t.Helper()
	m := newMachine(t, "darwin")
	fm := &fakeMac{t: t, answers: map[string]fakeMacAnswer{}, files: map[string]bool{}, starts: map[int]time.Time{}}
	fm.set("sw_vers", fakeMacAnswer{out: fixture(t, "macos/sw_vers-14.6.1.txt")})
	if appleSilicon {
		fm.set("sysctl -n hw.optional.arm64", fakeMacAnswer{out: "1\n"})
		fm.set("sysctl -n hw.ncpu", fakeMacAnswer{out: "10\n"})
		fm.set("sysctl -n machdep.cpu.brand_string", fakeMacAnswer{out: "Apple M1 Pro\n"})
		fm.set("sysctl -n sysctl.proc_translated", fakeMacAnswer{out: "0\n"})
	} else {
		m.env.GOARCH = "amd64"
		fm.set("sysctl -n hw.optional.arm64", fakeMacAnswer{stderr: "sysctl: unknown oid 'hw.optional.arm64'\n", code: unknownOID})
		fm.set("sysctl -n hw.ncpu", fakeMacAnswer{out: "12\n"})
		fm.set("sysctl -n machdep.cpu.brand_string", fakeMacAnswer{out: "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz\n"})
		fm.set("sysctl -n sysctl.proc_translated", fakeMacAnswer{stderr: "sysctl: unknown oid 'sysctl.proc_translated'\n", code: unknownOID})
	}
	m.env.Mac = &macos.Probe{Run: fm, Stat: fm.stat, StartTime: fm.startTime}
	return m, fm
}

func TestIntelMacSkipsRosetta(t *testing.T) {
	m, _ := macMachine(t, false)
	sum, _ := m.runSteps(plan.Doctor, "host", "rosetta")
	if r := sum.Results["host"]; r.Status != plan.OK || !strings.Contains(r.Detail, "Intel") || !strings.Contains(r.Detail, "14.6.1") {
		t.Errorf("host = %v %q", r.Status, r.Detail)
	}
	if r := sum.Results["rosetta"]; r.Status != plan.Skipped || !strings.Contains(r.Detail, "Intel") {
		t.Errorf("rosetta = %v %q, want skipped on Intel", r.Status, r.Detail)
	}
	if c := m.run.commands(); len(c) != 0 {
		t.Errorf("ran %+v on an Intel Mac", c)
	}
}

func TestAppleSiliconInstallsRosetta(t *testing.T) {
	m, fm := macMachine(t, true)
	probe := strings.Join(macos.RosettaProbeCommand(), " ")
	fm.set(probe, fakeMacAnswer{stderr: fixture(t, "macos/arch-no-rosetta.stderr.txt"), code: 1})
	install := []string{"softwareupdate", "--install-rosetta", "--agree-to-license"}
	m.run.answer(strings.Join(install, " "), "Install of Rosetta 2 finished successfully\n", nil)
	m.run.hook = func(c host.Cmd) {
		// Once installed, the runtime exists and x86_64 code runs.
		if strings.Join(c.Args, " ") == strings.Join(install, " ") {
			fm.mu.Lock()
			fm.files[macos.RosettaRuntime] = true
			fm.mu.Unlock()
			fm.set(probe, fakeMacAnswer{})
		}
	}

	if r := m.check("host"); r.Status != plan.OK || !strings.Contains(r.Detail, "Apple Silicon") {
		t.Fatalf("host = %v %q", r.Status, r.Detail)
	}
	r := m.check("rosetta")
	if r.Status != plan.NeedsApply {
		t.Fatalf("rosetta = %v %q, want needs-apply", r.Status, r.Detail)
	}
	if len(r.Changes) != 1 || strings.Join(r.Changes[0].Command, " ") != strings.Join(install, " ") || !r.Changes[0].Root {
		t.Errorf("changes = %+v, want the install command as root", r.Changes)
	}
	if len(m.run.commands()) != 0 {
		t.Fatalf("check ran %+v", m.run.commands())
	}
	sum, _ := m.runSteps(plan.Setup, "host", "rosetta")
	if got := sum.Results["rosetta"]; got.Status != plan.Applied {
		t.Fatalf("setup: rosetta %v %q", got.Status, got.Detail)
	}
	cmds := m.run.commands()
	if len(cmds) != 1 || strings.Join(cmds[0].Args, "\x00") != strings.Join(install, "\x00") || !cmds[0].Root {
		t.Errorf("ran %+v, want exactly %q as root", cmds, install)
	}
}

func TestRosettaQEMUSkipped(t *testing.T) {
	m, _ := macMachine(t, true)
	m.env.Emulation = "qemu"
	sum, _ := m.runSteps(plan.Doctor, "host", "rosetta")
	if r := sum.Results["rosetta"]; r.Status != plan.Skipped {
		t.Errorf("rosetta = %v %q, want skipped with --emulation qemu", r.Status, r.Detail)
	}
}

// desktop is Docker Desktop answering (or not) on a Mac.
func desktop(err error) *dockertest.Fake {
	return &dockertest.Fake{
		EndpointValue: docker.Endpoint{Host: "unix:///Users/user/.docker/run/docker.sock", Context: "desktop-linux",
			Source: "context desktop-linux", Product: docker.ProductDockerDesktop},
		ServerInfoFunc: func(context.Context) (docker.ServerInfo, error) {
			if err != nil {
				return docker.ServerInfo{}, err
			}
			return docker.ServerInfo{Version: "27.4.0", OSType: "linux", Arch: "aarch64", CPUs: 8, MemoryBytes: 8 << 30, OperatingSystem: "Docker Desktop"}, nil
		},
	}
}

func TestDockerDesktopRosettaSetting(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    plan.Status
	}{
		{"settings-store-vz-rosetta-off.json", plan.Blocked},
		{"settings-store-vz-rosetta-on.json", plan.OK},
		{"", plan.OK}, // no settings file: unknown, a warning
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			m, _ := macMachine(t, true)
			m.env.DockerClient = desktop(nil)
			if tc.fixture != "" {
				dir := filepath.Join(m.env.Paths.UserHome, "Library", "Group Containers", "group.com.docker")
				m.write(filepath.Join(dir, "settings-store.json"), fixture(t, "macos/"+tc.fixture), 0o644)
			}
			sum, _ := m.runSteps(plan.Doctor, "host", "docker")
			r := sum.Results["docker"]
			if r.Status != tc.want {
				t.Fatalf("docker = %v %q %q, want %v", r.Status, r.Detail, r.Hint, tc.want)
			}
			switch tc.want {
			case plan.Blocked:
				contains(t, "hint", r.Hint, "Use Rosetta for x86_64/amd64 emulation")
				contains(t, "hint", r.Hint, "--emulation qemu")
			case plan.OK:
				contains(t, "detail", r.Detail, "27.4.0")
				contains(t, "detail", r.Detail, "8 CPUs")
				if tc.fixture == "" && r.Warning == "" {
					t.Error("no warning although Docker Desktop's Rosetta setting is unknown")
				}
			}
			m.noWrites()
		})
	}
}

func TestDockerDesktopDown(t *testing.T) {
	m, _ := macMachine(t, true)
	m.env.DockerClient = desktop(errors.New("Cannot connect to the Docker daemon at unix:///Users/user/.docker/run/docker.sock. Is the docker daemon running?"))
	sum, _ := m.runSteps(plan.Doctor, "host", "docker")
	r := sum.Results["docker"]
	if r.Status != plan.Blocked || sum.Exit != plan.ExitBlocked {
		t.Fatalf("docker = %v %q, exit %d; want blocked, exit 3", r.Status, r.Detail, sum.Exit)
	}
	contains(t, "hint", r.Hint, "start Docker Desktop")
	contains(t, "detail", r.Detail, "Docker Desktop")
}

// macNix sets the nix facts of a Mac directly.
func macNix(m *testMachine, kind nixversion.InstallKind) {
	m.env.Facts.Set(factNixInfo, nixversion.Info{Line: "nix (Nix) 2.24.10", Flavor: nixversion.FlavorNix, Version: nixversion.Version{Major: 2, Minor: 24, Patch: 10}})
	m.env.Facts.Set(factNixInstall, nixversion.Install{Kind: kind})
}

func TestMacNixDarwinBlocksNixConf(t *testing.T) {
	m := nixDarwinMachine(t, "darwin")
	macNix(m, nixversion.KindNixDarwin)
	r := m.check("nix-conf")
	if r.Status != plan.Blocked {
		t.Fatalf("nix-conf = %v %q", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "nix-darwin")
	contains(t, "hint", r.Hint, "nix.buildMachines")
	if r := m.check("daemon"); r.Status != plan.Skipped {
		t.Errorf("daemon = %v %q, want skipped: nix-darwin restarts it on switch", r.Status, r.Detail)
	}
}

// launchctl answers for the daemon services: running is the label whose
// service runs (pid 383), the other is missing.
func launchctl(t *testing.T, fm *fakeMac, running string) {
	t.Helper()
	rec := fixture(t, "macos/launchctl-running-nix-daemon.txt")
	missing := func(label string) fakeMacAnswer {
		return fakeMacAnswer{stderr: "Bad request.\nCould not find service \"" + label + "\" in domain for system\n", code: 113}
	}
	for _, label := range macos.DaemonLabels() {
		argv := strings.Join(macos.PrintCommand(label), " ")
		if label == running {
			fm.set(argv, fakeMacAnswer{out: strings.ReplaceAll(rec, macos.LabelNixDaemon, label)})
		} else {
			fm.set(argv, missing(label))
		}
	}
}

func TestMacDaemonStaleAndFresh(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  nixversion.InstallKind
		label string
		conf  string
		file  func(p host.Paths) string
	}{
		{"upstream", nixversion.KindMultiUser, macos.LabelNixDaemon, installerNixConf, func(p host.Paths) string { return p.NixConf() }},
		{"determinate", nixversion.KindDeterminate, macos.LabelDeterminateDaemon, determinateNixConf, func(p host.Paths) string { return p.NixCustomConf() }},
	} {
		for _, stale := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stale=%v", tc.name, stale), func(t *testing.T) {
				m, fm := macMachine(t, true)
				macNix(m, tc.kind)
				launchctl(t, fm, tc.label)
				m.write(m.env.Paths.NixConf(), tc.conf, 0o644)
				changed := tc.file(m.env.Paths)
				m.write(changed, "builders-use-substitutes = true\n", 0o644)
				mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
				for _, f := range []string{m.env.Paths.NixConf(), changed} {
					old := mtime
					if f != changed {
						old = mtime.Add(-24 * time.Hour)
					}
					if err := os.Chtimes(f, old, old); err != nil {
						t.Fatal(err)
					}
				}
				fm.starts[383] = mtime.Add(10 * time.Minute)
				if stale {
					fm.starts[383] = mtime.Add(-10 * time.Minute)
				}
				kick := []string{"launchctl", "kickstart", "-k", "system/" + tc.label}

				r := m.check("daemon")
				if !stale {
					if r.Status != plan.OK {
						t.Fatalf("daemon = %v %q, want ok", r.Status, r.Detail)
					}
					contains(t, "detail", r.Detail, "383")
					return
				}
				if r.Status != plan.NeedsApply {
					t.Fatalf("daemon = %v %q, want needs-apply", r.Status, r.Detail)
				}
				contains(t, "detail", r.Detail, changed)
				if len(r.Changes) != 1 || strings.Join(r.Changes[0].Command, " ") != strings.Join(kick, " ") || !r.Changes[0].Root {
					t.Fatalf("changes = %+v, want %q as root", r.Changes, kick)
				}
				// Apply restarts through the privileged runner, then waits
				// for the daemon to answer.
				m.run.answer(strings.Join(kick, " "), "", nil)
				m.run.answer("nix --extra-experimental-features nix-command store info --store daemon", "Store URL: daemon\n", nil)
				if err := m.apply("daemon"); err != nil {
					t.Fatal(err)
				}
				cmds := m.run.commands()
				if len(cmds) == 0 || strings.Join(cmds[0].Args, " ") != strings.Join(kick, " ") || !cmds[0].Root {
					t.Errorf("ran %+v, want %q as root first", cmds, kick)
				}
			})
		}
	}
}

func TestMacDaemonNotRunning(t *testing.T) {
	m, fm := macMachine(t, true)
	macNix(m, nixversion.KindMultiUser)
	launchctl(t, fm, "none")
	r := m.check("daemon")
	if r.Status != plan.NeedsApply {
		t.Fatalf("daemon = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "not running")
	if len(r.Changes) != 1 || strings.Join(r.Changes[0].Command, " ") != "launchctl kickstart -k system/"+macos.LabelNixDaemon {
		t.Errorf("changes = %+v", r.Changes)
	}
}

// The nix step reads how Nix is installed from the machine's files, so on
// a Mac whose nix.conf is Determinate's it must say Determinate, and the
// daemon step must then restart Determinate's daemon.
func TestMacNixStepDetectsDeterminate(t *testing.T) {
	m, fm := macMachine(t, true)
	m.write(m.env.Paths.NixConf(), determinateNixConf, 0o644)
	m.run.answer("nix --version", "nix (Nix) 2.30.1\n", nil)
	launchctl(t, fm, macos.LabelDeterminateDaemon)
	r := m.check("nix")
	if r.Status != plan.OK {
		t.Fatalf("nix = %v %q", r.Status, r.Detail)
	}
	inst, _ := Fact[nixversion.Install](m.env.Facts, factNixInstall)
	if inst.Kind != nixversion.KindDeterminate {
		t.Errorf("nix step found %v (%s) with Determinate's nix.conf at %s; want Determinate Nix", inst.Kind, inst.Reason, m.env.Paths.NixConf())
	}
	if got := restartCommand(m.env, inst); strings.Join(got, " ") != "launchctl kickstart -k system/"+macos.LabelDeterminateDaemon {
		t.Errorf("restart command %q, want Determinate's daemon", got)
	}
}
