package macos

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDesktopSettings(t *testing.T) {
	tests := []struct {
		file             string
		rosetta, vf, vmm Flag
		verdict          Verdict
		hintHas          string
	}{
		{"settings-store-4.x-fresh-install.json", Unknown, Unknown, Unknown, VerdictUnknown, RosettaSettingPlace},
		{"settings-store-docker-vmm.json", Off, Off, On, VerdictBlocked, VMMSettingPlace},
		{"settings-store-vz-rosetta-off.json", Off, On, Off, VerdictBlocked, RosettaSettingPlace},
		{"settings-store-vz-rosetta-on.json", On, On, Off, VerdictOK, ""},
		{"settings-legacy-rosetta-on.json", On, On, Unknown, VerdictOK, ""},
		{"settings-legacy-rosetta-off.json", Off, On, Unknown, VerdictBlocked, RosettaSettingPlace},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "/Users/me/Library/Group Containers/group.com.docker/" + tt.file
			s, err := ParseDesktopSettings(path, fixture(t, "docker-desktop/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if s.Rosetta != tt.rosetta || s.VirtualizationFramework != tt.vf || s.DockerVMM != tt.vmm {
				t.Errorf("rosetta=%v vf=%v vmm=%v, want %v %v %v", s.Rosetta, s.VirtualizationFramework, s.DockerVMM, tt.rosetta, tt.vf, tt.vmm)
			}
			v := EvaluateDesktopRosetta(s)
			if v.Verdict != tt.verdict {
				t.Errorf("verdict = %v (%s), want %v", v.Verdict, v.Detail, tt.verdict)
			}
			if !strings.Contains(v.Detail, path) {
				t.Errorf("Detail %q does not name the file", v.Detail)
			}
			if tt.hintHas != "" && !strings.Contains(v.Hint, tt.hintHas) {
				t.Errorf("Hint %q does not contain %q", v.Hint, tt.hintHas)
			}
			if v.Verdict == VerdictBlocked && !strings.Contains(v.Hint, "Apple Virtualization framework") {
				t.Errorf("Blocked hint %q must say Rosetta needs the Virtualization framework", v.Hint)
			}
		})
	}
}

func TestParseDesktopSettingsShapes(t *testing.T) {
	s, err := ParseDesktopSettings("x.json", []byte(`{"UseVirtualizationFrameworkRosetta": {"locked": true, "value": true}, "UseVirtualizationFramework": "yes"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Rosetta != On || s.VirtualizationFramework != Unknown {
		t.Errorf("got %+v", s)
	}
	for _, bad := range []string{"", "null", "[1, 2]", `"text"`} {
		if _, err := ParseDesktopSettings("/h/settings.json", []byte(bad)); err == nil {
			t.Errorf("ParseDesktopSettings(%q): want an error", bad)
		}
	}
	_, err = ParseDesktopSettings("/h/settings-store.json", fixture(t, "docker-desktop/settings-store-truncated.json"))
	if err == nil || !strings.Contains(err.Error(), "/h/settings-store.json") {
		t.Errorf("malformed JSON error %v must name the file", err)
	}
}

func TestReadDesktopSettings(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, filepath.FromSlash(DesktopSettingsDir))

	s, err := ReadDesktopSettings(home, nil)
	if err != nil || s.Path != "" || s.Rosetta != Unknown {
		t.Fatalf("no Docker Desktop: %+v, %v", s, err)
	}
	if v := EvaluateDesktopRosetta(s); v.Verdict != VerdictUnknown {
		t.Errorf("no settings file: verdict %v", v.Verdict)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, DesktopLegacySettingsFile)
	if err := os.WriteFile(legacy, fixture(t, "docker-desktop/settings-legacy-rosetta-off.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = ReadDesktopSettings(home, nil)
	if err != nil || s.Path != legacy || s.Rosetta != Off {
		t.Fatalf("legacy only: %+v, %v", s, err)
	}

	store := filepath.Join(dir, DesktopSettingsStoreFile)
	if err := os.WriteFile(store, fixture(t, "docker-desktop/settings-store-vz-rosetta-on.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = ReadDesktopSettings(home, nil)
	if err != nil || s.Path != store || s.Rosetta != On {
		t.Fatalf("both files, settings-store.json must win: %+v, %v", s, err)
	}

	if err := os.WriteFile(store, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDesktopSettings(home, nil); err == nil || !strings.Contains(err.Error(), store) {
		t.Errorf("malformed settings-store.json: %v, want an error naming it", err)
	}

	denied := errors.New("permission denied")
	_, err = ReadDesktopSettings(home, func(string) ([]byte, error) { return nil, denied })
	if !errors.Is(err, denied) || !strings.Contains(err.Error(), store) {
		t.Errorf("unreadable file: %v", err)
	}
	_, err = ReadDesktopSettings(home, func(string) ([]byte, error) { return nil, fs.ErrNotExist })
	if err != nil {
		t.Errorf("missing files: %v", err)
	}
}
