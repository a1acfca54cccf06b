package macos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSWVers(t *testing.T) {
	tests := []struct {
		file    string
		want    SWVers
		major   int
		str     string
		atLeast bool // AtLeast(13, 0)
	}{
		{"macos-10.15.7-catalina.txt", SWVers{"Mac OS X", "10.15.7", "", "19H15"}, 10, "Mac OS X 10.15.7 (19H15)", false},
		{"macos-12.6.5-monterey.txt", SWVers{"macOS", "12.6.5", "", "21G531"}, 12, "macOS 12.6.5 (21G531)", false},
		{"macos-13.5-ventura.txt", SWVers{"macOS", "13.5", "", "22G74"}, 13, "macOS 13.5 (22G74)", true},
		{"macos-14.4.1-rsr.txt", SWVers{"macOS", "14.4.1", "(a)", "23E224"}, 14, "macOS 14.4.1 (a) (23E224)", true},
		{"macos-14.6.1-sonoma.txt", SWVers{"macOS", "14.6.1", "", "23G93"}, 14, "macOS 14.6.1 (23G93)", true},
		{"macos-15.6-sequoia.txt", SWVers{"macOS", "15.6", "", "24G84"}, 15, "macOS 15.6 (24G84)", true},
		{"macos-26.6.2-tahoe.txt", SWVers{"macOS", "26.6.2", "", "25G83"}, 26, "macOS 26.6.2 (25G83)", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseSWVers(fixture(t, "sw_vers/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Major() != tt.major || got.String() != tt.str || got.AtLeast(13, 0) != tt.atLeast {
				t.Errorf("Major=%d String=%q AtLeast(13,0)=%v", got.Major(), got.String(), got.AtLeast(13, 0))
			}
		})
	}
	for _, bad := range []string{"", "sw_vers: command not found\n", "ProductName:\tmacOS\nProductVersion:\tfoo\n"} {
		if v, err := ParseSWVers([]byte(bad)); err == nil {
			t.Errorf("ParseSWVers(%q) = %+v, want an error", bad, v)
		}
	}
}

func TestParseSysctl(t *testing.T) {
	if b, err := ParseSysctlBool(fixture(t, "sysctl/hw.optional.arm64-apple-silicon.txt")); err != nil || !b {
		t.Errorf("hw.optional.arm64 = %v, %v", b, err)
	}
	if b, err := ParseSysctlBool([]byte("0\n")); err != nil || b {
		t.Errorf("0 = %v, %v", b, err)
	}
	if _, err := ParseSysctlBool([]byte("yes\n")); err == nil {
		t.Error("ParseSysctlBool(yes): want an error")
	}
	if n, err := ParseSysctlInt(fixture(t, "sysctl/hw.ncpu-m1-max.txt")); err != nil || n != 10 {
		t.Errorf("hw.ncpu = %d, %v", n, err)
	}
	if _, err := ParseSysctlInt([]byte("")); err == nil {
		t.Error("ParseSysctlInt(empty): want an error")
	}
	if s := ParseSysctlString(fixture(t, "sysctl/machdep.cpu.brand_string-m1-pro.txt")); s != "Apple M1 Pro" {
		t.Errorf("brand = %q", s)
	}
	if s := ParseSysctlString(fixture(t, "sysctl/machdep.cpu.brand_string-intel.txt")); s != "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz" {
		t.Errorf("brand = %q", s)
	}
	intel := string(fixture(t, "sysctl/hw.optional.arm64-intel.stderr.txt"))
	if !IsUnknownOID(intel, "hw.optional.arm64") || IsUnknownOID(intel, "hw.ncpu") || IsUnknownOID("sysctl: permission denied", "hw.optional.arm64") {
		t.Error("IsUnknownOID misreads sysctl's answers")
	}
}

func TestParseLaunchctlPrint(t *testing.T) {
	running, err := ParseLaunchctlPrint(fixture(t, "launchctl/running-nix-darwin-2.34.7.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := LaunchdService{
		Label: "org.nixos.nix-daemon", Found: true, State: "running", PID: 383,
		Path: "/Library/LaunchDaemons/org.nixos.nix-daemon.plist", Program: "/bin/sh",
		Runs: 1, LastExitCode: "(never exited)",
	}
	if running != want {
		t.Errorf("running:\n got %+v\nwant %+v", running, want)
	}
	if !running.Running() {
		t.Error("Running() = false")
	}

	stopped, err := ParseLaunchctlPrint(fixture(t, "launchctl/not-running-activate-system.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !stopped.Found || stopped.State != "not running" || stopped.PID != 0 || stopped.Running() || stopped.LastExitCode != "0" {
		t.Errorf("not running: %+v", stopped)
	}

	missing, err := ParseLaunchctlPrint(fixture(t, "launchctl/missing-determinate.stderr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if missing.Found || missing.Running() || missing.Label != "systems.determinate.nix-daemon" {
		t.Errorf("missing: %+v", missing)
	}

	// The nested coalition blocks carry their own "state = active": it must
	// not overwrite the service's state.
	if running.State == "active" {
		t.Error("nested state leaked into the service state")
	}
	if _, err := ParseLaunchctlPrint([]byte("Usage: launchctl print <domain-target>\n")); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestCommands(t *testing.T) {
	eq := func(got []string, want string) {
		t.Helper()
		if strings.Join(got, " ") != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	eq(RosettaInstallCommand(), "softwareupdate --install-rosetta --agree-to-license")
	eq(RosettaProbeCommand(), "arch -arch x86_64 /usr/bin/true")
	eq(KickstartCommand(LabelNixDaemon), "launchctl kickstart -k system/org.nixos.nix-daemon")
	eq(KickstartCommand(LabelDeterminateDaemon), "launchctl kickstart -k system/systems.determinate.nix-daemon")
	eq(PrintCommand(LabelNixDaemon), "launchctl print system/org.nixos.nix-daemon")
	// Fresh slices: a caller's edit must not change the next answer.
	a := RosettaInstallCommand()
	a[0] = "rm"
	eq(RosettaInstallCommand(), "softwareupdate --install-rosetta --agree-to-license")
}

func TestRosettaNeeded(t *testing.T) {
	tests := []struct {
		arm64     bool
		emulation string
		want      bool
	}{
		{true, "", true}, {true, "rosetta", true}, {true, "qemu", false},
		{false, "", false}, {false, "rosetta", false}, {false, "qemu", false},
	}
	for _, tt := range tests {
		if got := RosettaNeeded(tt.arm64, tt.emulation); got != tt.want {
			t.Errorf("RosettaNeeded(%v, %q) = %v, want %v", tt.arm64, tt.emulation, got, tt.want)
		}
	}
}
