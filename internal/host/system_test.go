package host

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// inProcessSudo stands in for sudo: it runs the privileged half of
// SudoFiles in this process, as the CLI does for PrivilegedCommand.
type inProcessSudo struct {
	t        *testing.T
	password bool // sudo would ask for a password
	calls    int
}

func (r *inProcessSudo) Run(_ context.Context, c Cmd) ([]byte, error) {
	r.calls++
	if !c.Root || len(c.Args) < 3 || c.Args[1] != PrivilegedCommand {
		r.t.Fatalf("unexpected command %q (root %v)", c.Args, c.Root)
	}
	if r.password {
		return nil, &CmdError{Args: c.Args, Exit: 1, Stderr: "sudo: a password is required"}
	}
	var out bytes.Buffer
	if err := ServePrivileged(c.Args[2:], bytes.NewReader(c.Stdin), &out); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &CmdError{Args: c.Args, Exit: 3, Stderr: err.Error()}
		}
		return nil, &CmdError{Args: c.Args, Exit: 1, Stderr: err.Error()}
	}
	return out.Bytes(), nil
}

func TestSudoFilesRoundTrip(t *testing.T) {
	sudo := &inProcessSudo{t: t}
	f := SudoFiles{Runner: sudo, Self: "/usr/local/bin/nixbuilder-setup"}
	dir := filepath.Join(t.TempDir(), "etc", "nix")
	if err := f.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "nix.conf")
	os.WriteFile(p, []byte("original\n"), 0o640)
	if err := f.WriteFile(p, []byte("new\n"), WriteOptions{Mode: 0o600, UID: -1, GID: -1, Backup: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new\n" {
		t.Errorf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the existing 0640 kept", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(p + BackupSuffix); string(b) != "original\n" {
		t.Errorf("backup %q", b)
	}
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("k"), 0o644)
	if err := f.WriteFile(key, []byte("k"), WriteOptions{Mode: 0o600, UID: -1, GID: -1, Enforce: true}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("enforced mode %v, want 0600", fi.Mode().Perm())
	}
	if err := f.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("not removed: %v", err)
	}
	if sudo.calls != 4 {
		t.Errorf("%d privileged calls, want 4 (mkdir, two writes, remove)", sudo.calls)
	}
}

func TestSudoFilesNeedsPassword(t *testing.T) {
	f := SudoFiles{Runner: &inProcessSudo{t: t, password: true}, Self: "nixbuilder-setup"}
	err := f.WriteFile(filepath.Join(t.TempDir(), "x"), []byte("x"), WriteOptions{})
	var nr *NeedsRootError
	if !errors.As(err, &nr) {
		t.Fatalf("err = %v, want a NeedsRootError", err)
	}
}

func TestServePrivilegedReadMissing(t *testing.T) {
	err := ServePrivileged([]string{"read", filepath.Join(t.TempDir(), "missing")}, nil, &bytes.Buffer{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist (the CLI exits 3 for it)", err)
	}
	if err := ServePrivileged([]string{"frobnicate", "/x"}, nil, &bytes.Buffer{}); err == nil {
		t.Error("unknown operation accepted")
	}
}
