package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// A full disk: the write fails with a clear error, the original is intact
// and no temp file is left.
func TestWriteFileAtomicFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, 0)
	p := filepath.Join(dir, "nix.conf")
	orig := []byte("trusted-users = root\n")
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(p, bytes.Repeat([]byte("x"), 1<<20), WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk is full") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want a full-disk error naming %s", err, p)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, orig) {
		t.Errorf("original changed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
