package nixversion

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file        string
		flavor      Flavor
		version     string
		dist        string
		configShow  bool
		storeInfo   bool
		nixCmdFlag  bool
		sshPortBug  bool
		description string
	}{
		{"debian-nix-bin-2.8.0.txt", FlavorNix, "2.8.0", "", false, false, true, true, "Nix 2.8.0"},
		{"nix-2.18.1.txt", FlavorNix, "2.18.1", "", false, false, true, true, "Nix 2.18.1"},
		{"nix-2.24.9-with-warning.txt", FlavorNix, "2.24.9", "", true, true, true, true, "Nix 2.24.9"},
		{"nix-pre-2.25.0.txt", FlavorNix, "2.25.0-pre20241101_abc", "", true, true, true, true, "Nix 2.25.0-pre20241101_abc"},
		{"nix-2.34.7.txt", FlavorNix, "2.34.7", "", true, true, true, false, "Nix 2.34.7"},
		{"nix-darwin-nixpkgs-2.34.7+1.txt", FlavorNix, "2.34.7+1", "", true, true, true, false, "Nix 2.34.7+1"},
		{"determinate-3.4.1.txt", FlavorDeterminate, "2.28.2", "3.4.1", true, true, false, true, "Determinate Nix 3.4.1 (Nix 2.28.2)"},
		{"determinate-3.8.2.txt", FlavorDeterminate, "2.30.1", "3.8.2", true, true, false, true, "Determinate Nix 3.8.2 (Nix 2.30.1)"},
		{"determinate-3.22.1.txt", FlavorDeterminate, "2.35.2", "3.22.1", true, true, false, false, "Determinate Nix 3.22.1 (Nix 2.35.2)"},
		{"lix-2.90.0-beta.1.txt", FlavorLix, "2.90.0-beta.1", "", true, false, true, true, "Lix 2.90.0-beta.1"},
		{"lix-2.91.1.txt", FlavorLix, "2.91.1", "", true, false, true, true, "Lix 2.91.1"},
		{"lix-2.92.0-dev.txt", FlavorLix, "2.92.0-dev-pre20250117-0d14c2b", "", true, false, true, true, "Lix 2.92.0-dev-pre20250117-0d14c2b"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", "version", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			info, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if info.Flavor != tt.flavor {
				t.Errorf("Flavor = %v, want %v", info.Flavor, tt.flavor)
			}
			if got := info.Version.String(); got != tt.version {
				t.Errorf("Version = %s, want %s", got, tt.version)
			}
			gotDist := ""
			if !info.DistVersion.IsZero() {
				gotDist = info.DistVersion.String()
			}
			if gotDist != tt.dist {
				t.Errorf("DistVersion = %q, want %q", gotDist, tt.dist)
			}
			if got := info.HasConfigShow(); got != tt.configShow {
				t.Errorf("HasConfigShow = %v, want %v", got, tt.configShow)
			}
			if got := info.HasStoreInfo(); got != tt.storeInfo {
				t.Errorf("HasStoreInfo = %v, want %v", got, tt.storeInfo)
			}
			if got := info.NeedsNixCommandFlag(); got != tt.nixCmdFlag {
				t.Errorf("NeedsNixCommandFlag = %v, want %v", got, tt.nixCmdFlag)
			}
			if got := info.SSHNGPortBug(); got != tt.sshPortBug {
				t.Errorf("SSHNGPortBug = %v, want %v", got, tt.sshPortBug)
			}
			if got := info.String(); got != tt.description {
				t.Errorf("String = %q, want %q", got, tt.description)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, out := range []string{
		"",
		"bash: nix: command not found\n",
		"error: experimental Nix feature 'nix-command' is disabled\n",
		"nix (Nix) two.eight\n",
	} {
		if info, err := Parse([]byte(out)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", out, info)
		}
	}
	if _, err := Parse([]byte("hello\n")); !errors.Is(err, ErrNotNix) {
		t.Errorf("Parse(hello) error = %v, want ErrNotNix", err)
	}
}

func TestParseUnknownImplementation(t *testing.T) {
	info, err := Parse([]byte("nix (Snix) 0.1.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Flavor != FlavorUnknown || info.Version.String() != "0.1.0" {
		t.Errorf("got %+v", info)
	}
}

func TestVersionCompare(t *testing.T) {
	order := []string{
		"2.3.16", "2.8.0", "2.18.1", "2.19.0pre20231001_aaa", "2.19.0",
		"2.25.0pre20241101_abc", "2.25.0", "2.34.7", "2.90.0-beta.0", "2.90.0-beta.1", "2.90.0",
	}
	for i := range order {
		for j := range order {
			a, err := ParseVersion(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := ParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("2.34.7+1")
	b, _ := ParseVersion("2.34.7")
	if a.Compare(b) != 0 {
		t.Errorf("build suffix must not change the order: %v vs %v", a, b)
	}
	short, err := ParseVersion("2.90-beta.0")
	if err != nil || short.String() != "2.90.0-beta.0" {
		t.Errorf("ParseVersion(2.90-beta.0) = %v, %v", short, err)
	}
}

func TestCommandArgs(t *testing.T) {
	parse := func(line string) Info {
		t.Helper()
		i, err := Parse([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	tests := []struct {
		line       string
		configShow []string
		storeInfo  []string
	}{
		{"nix (Nix) 2.8.0",
			[]string{"--extra-experimental-features", "nix-command", "show-config"},
			[]string{"--extra-experimental-features", "nix-command", "store", "ping", "--store", "daemon"}},
		{"nix (Nix) 2.34.7",
			[]string{"--extra-experimental-features", "nix-command", "config", "show"},
			[]string{"--extra-experimental-features", "nix-command", "store", "info", "--store", "daemon"}},
		{"nix (Determinate Nix 3.8.2) 2.30.1",
			[]string{"config", "show"},
			[]string{"store", "info", "--store", "daemon"}},
		{"nix (Lix, like Nix) 2.91.1",
			[]string{"--extra-experimental-features", "nix-command", "config", "show"},
			[]string{"--extra-experimental-features", "nix-command", "store", "ping", "--store", "daemon"}},
		{"nix (Nix) 2.3.16",
			[]string{"show-config"},
			[]string{"store", "ping", "--store", "daemon"}},
	}
	for _, tt := range tests {
		i := parse(tt.line)
		if got := i.ConfigShowArgs(); !reflect.DeepEqual(got, tt.configShow) {
			t.Errorf("%s: ConfigShowArgs = %q, want %q", tt.line, got, tt.configShow)
		}
		if got := i.StoreInfoArgs("daemon"); !reflect.DeepEqual(got, tt.storeInfo) {
			t.Errorf("%s: StoreInfoArgs = %q, want %q", tt.line, got, tt.storeInfo)
		}
	}
	// The returned slices are fresh: appending to one must not leak into the next.
	i := parse("nix (Nix) 2.8.0")
	a := i.NixCommandArgs()
	_ = append(a, "poison")
	if got := i.ConfigShowArgs(); got[len(got)-1] != "show-config" {
		t.Errorf("shared slice: %q", got)
	}
}

// TestRealNix runs the nix on this machine (Debian's nix-bin in CI) and
// checks what it reports against the old-CLI capabilities of 2.8.
func TestRealNix(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	out, err := exec.Command(nix, "--version").Output()
	if err != nil {
		t.Fatalf("nix --version: %v", err)
	}
	info, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Flavor != FlavorNix || info.Version.String() != "2.8.0" {
		t.Fatalf("nix --version parsed as %s (%q); this machine has Debian's nix-bin 2.8.0", info, out)
	}
	if info.HasConfigShow() || info.HasStoreInfo() || !info.NeedsNixCommandFlag() || !info.SSHNGPortBug() {
		t.Errorf("capabilities of %s: configShow=%v storeInfo=%v needsFlag=%v portBug=%v",
			info, info.HasConfigShow(), info.HasStoreInfo(), info.NeedsNixCommandFlag(), info.SSHNGPortBug())
	}
	// The arguments we derive must be accepted by the real nix.
	cmd := exec.Command(nix, append(info.ConfigShowArgs(), "--json")...)
	cmd.Env = append(os.Environ(), "NIX_CONF_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nix %q: %v\n%s", info.ConfigShowArgs(), err, out)
	}
	// Without the flag, Debian's 2.8 refuses: the capability is real.
	cmd = exec.Command(nix, "show-config")
	cmd.Env = append(os.Environ(), "NIX_CONF_DIR="+t.TempDir())
	if err := cmd.Run(); err == nil {
		t.Errorf("nix show-config without --extra-experimental-features succeeded; NeedsNixCommandFlag would be wrong")
	}
}
