package nixversion

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckFreshness(t *testing.T) {
	start := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	conf := func(p string, d time.Duration) ConfFile { return ConfFile{Path: p, ModTime: start.Add(d)} }
	tests := []struct {
		name   string
		files  []ConfFile
		stale  bool
		newest string
	}{
		{"edited before start", []ConfFile{conf("/etc/nix/nix.conf", -time.Hour)}, false, "/etc/nix/nix.conf"},
		{"edited after start", []ConfFile{conf("/etc/nix/nix.conf", time.Hour)}, true, "/etc/nix/nix.conf"},
		{"include edited after start",
			[]ConfFile{conf("/etc/nix/nix.conf", -time.Hour), conf("/etc/nix/nix.custom.conf", 5*time.Minute)},
			true, "/etc/nix/nix.custom.conf"},
		{"written just before a restart, within the slack",
			[]ConfFile{conf("/etc/nix/nix.conf", 500*time.Millisecond)}, false, "/etc/nix/nix.conf"},
		{"just past the slack", []ConfFile{conf("/etc/nix/nix.conf", 1500*time.Millisecond)}, true, "/etc/nix/nix.conf"},
		{"no files", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckFreshness(start, tt.files, DefaultSlack)
			if got.Stale != tt.stale || got.Newest.Path != tt.newest {
				t.Errorf("got stale=%v newest=%q (%s), want stale=%v newest=%q", got.Stale, got.Newest.Path, got.Detail, tt.stale, tt.newest)
			}
			if tt.newest != "" && !strings.Contains(got.Detail, tt.newest) {
				t.Errorf("Detail %q does not name %s", got.Detail, tt.newest)
			}
		})
	}
}

func TestStatConfFiles(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nix.conf")
	if err := os.WriteFile(conf, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(conf, old, old); err != nil {
		t.Fatal(err)
	}
	// A store file (epoch mtime) behind a fresh symlink: the link's time counts.
	target := filepath.Join(dir, "store-nix.conf")
	if err := os.WriteFile(target, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1, 0)
	if err := os.Chtimes(target, epoch, epoch); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "linked.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	files, err := StatConfFiles([]string{conf, filepath.Join(dir, "missing.conf"), link})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files = %+v, want nix.conf and linked.conf", files)
	}
	if !files[0].ModTime.Equal(old) {
		t.Errorf("nix.conf mtime = %v, want %v", files[0].ModTime, old)
	}
	if files[1].ModTime.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("linked.conf mtime = %v, want the link's recent time", files[1].ModTime)
	}
}
