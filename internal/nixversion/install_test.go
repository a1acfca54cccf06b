package nixversion

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetectInstall(t *testing.T) {
	determinate := readFixture(t, "nixconf/determinate.conf")
	installer0 := readFixture(t, "nixconf/determinate-installer-0.x.conf")
	upstream := readFixture(t, "nixconf/upstream-installer.conf")
	debian := readFixture(t, "nixconf/debian-nix-bin.conf")
	tests := []struct {
		name   string
		facts  InstallFacts
		want   InstallKind
		reason string
	}{
		{"upstream multi-user on macOS",
			InstallFacts{GOOS: "darwin", NixConf: upstream, DaemonSocket: true, DaemonRunning: true, Flavor: FlavorNix},
			KindMultiUser, "daemon socket"},
		{"daemon running, socket not visible",
			InstallFacts{GOOS: "linux", NixConf: upstream, DaemonRunning: true},
			KindMultiUser, "nix-daemon is running"},
		{"nix-darwin symlink",
			InstallFacts{GOOS: "darwin", NixConfLink: "/etc/static/nix/nix.conf", DaemonSocket: true, DaemonRunning: true},
			KindNixDarwin, "/etc/static/nix/nix.conf"},
		{"nix-darwin relative symlink",
			InstallFacts{GOOS: "darwin", NixConfLink: "../static/nix/nix.conf", DaemonSocket: true},
			KindNixDarwin, "symlink"},
		{"NixOS symlink",
			InstallFacts{GOOS: "linux", NixConfLink: "/etc/static/nix/nix.conf", DaemonSocket: true},
			KindNixOS, "symlink"},
		{"nix-darwin wins over Determinate flavor",
			InstallFacts{GOOS: "darwin", NixConfLink: "/etc/static/nix/nix.conf", DeterminateNixd: true, Flavor: FlavorDeterminate, DaemonSocket: true},
			KindNixDarwin, "symlink"},
		{"symlink elsewhere is not nix-darwin",
			InstallFacts{GOOS: "darwin", NixConfLink: "/Users/me/dotfiles/nix.conf", NixConf: upstream, DaemonSocket: true},
			KindMultiUser, "daemon socket"},
		{"Determinate header",
			InstallFacts{GOOS: "darwin", NixConf: determinate, DaemonSocket: true, Flavor: FlavorDeterminate},
			KindDeterminate, DeterminateHeader},
		{"Determinate installer 0.x include",
			InstallFacts{GOOS: "linux", NixConf: installer0, DaemonSocket: true, Flavor: FlavorNix},
			KindDeterminate, "includes nix.custom.conf"},
		{"determinate-nixd only",
			InstallFacts{GOOS: "darwin", NixConf: upstream, DeterminateNixd: true, DaemonSocket: true},
			KindDeterminate, DeterminateNixd},
		{"Determinate flavor only",
			InstallFacts{GOOS: "darwin", DaemonSocket: true, Flavor: FlavorDeterminate},
			KindDeterminate, "Determinate"},
		{"Debian nix-bin without daemon",
			InstallFacts{GOOS: "linux", NixConf: debian, Flavor: FlavorNix},
			KindSingleUser, "no daemon"},
		{"header quoted after settings does not count",
			InstallFacts{GOOS: "linux", NixConf: []byte("sandbox = false\n# DETERMINATE NIX CONFIG\n"), DaemonSocket: true},
			KindMultiUser, "daemon socket"},
		{"commented include does not count",
			InstallFacts{GOOS: "linux", NixConf: []byte("# !include nix.custom.conf\n"), DaemonSocket: true},
			KindMultiUser, "daemon socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DetectInstall(tt.facts)
			if got.Kind != tt.want {
				t.Errorf("Kind = %v (%s), want %v", got.Kind, got.Reason, tt.want)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to mention %q", got.Reason, tt.reason)
			}
		})
	}
}

func TestGatherInstallFacts(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) string {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		return full
	}
	// No nix.conf at all.
	f, err := GatherInstallFacts(root, "linux", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.NixConf != nil || f.NixConfLink != "" || f.DaemonSocket || f.DeterminateNixd {
		t.Errorf("empty root: %+v", f)
	}

	// nix-darwin: a dangling symlink into /etc/static (the target is absolute,
	// so under a test root it does not resolve) still counts.
	if err := os.Symlink("/etc/static/nix/nix.conf", mk("/etc/nix/nix.conf")); err != nil {
		t.Fatal(err)
	}
	// A real unix socket, as the daemon creates.
	sock := mk(DaemonSocket)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("create a unix socket at %s: %v", sock, err)
	}
	defer ln.Close()
	if err := os.WriteFile(mk(DeterminateNixd), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err = GatherInstallFacts(root, "darwin", "/etc/nix")
	if err != nil {
		t.Fatal(err)
	}
	if f.NixConfLink != "/etc/static/nix/nix.conf" || !f.DaemonSocket || !f.DeterminateNixd {
		t.Errorf("facts = %+v", f)
	}
	if got := DetectInstall(f); got.Kind != KindNixDarwin {
		t.Errorf("DetectInstall = %+v, want nix-darwin", got)
	}

	// NIX_CONF_DIR elsewhere with a Determinate nix.conf.
	if err := os.WriteFile(mk("/opt/nixconf/nix.conf"), readFixture(t, "nixconf/determinate.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = GatherInstallFacts(root, "linux", "/opt/nixconf")
	if err != nil {
		t.Fatal(err)
	}
	if got := DetectInstall(f); got.Kind != KindDeterminate || !strings.Contains(got.Reason, "/opt/nixconf/nix.conf") {
		t.Errorf("DetectInstall = %+v, want Determinate naming /opt/nixconf/nix.conf", got)
	}
}

// TestRealInstall checks the machine's own installation: Debian's nix-bin
// here, with no daemon running.
func TestRealInstall(t *testing.T) {
	if _, err := os.Stat("/etc/nix/nix.conf"); err != nil {
		testenv.Missing(t, "no /etc/nix/nix.conf on this machine (Debian's nix-bin installs it)")
	}
	f, err := GatherInstallFacts("/", "linux", "")
	if err != nil {
		t.Fatal(err)
	}
	pid, derr := LinuxProc().FindDaemon()
	f.DaemonRunning = derr == nil
	got := DetectInstall(f)
	t.Logf("install: %v (%s); daemon pid %d (%v)", got.Kind, got.Reason, pid, derr)
	noDaemon := !f.DaemonSocket && !f.DaemonRunning
	if noDaemon != (got.Kind == KindSingleUser) {
		t.Errorf("socket=%v running=%v but kind %v", f.DaemonSocket, f.DaemonRunning, got.Kind)
	}
}
