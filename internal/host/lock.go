package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is held for the length of a run, so that two runs cannot interleave
// their changes.
type Lock struct{ f *os.File }

// AcquireLock takes the run lock at path without waiting. When another run
// holds it, the error says which process.
func AcquireLock(path string) (*Lock, error) {
	_ = os.MkdirAll(filepath.Dir(path), 0o755) // a re-rooted machine may have no /tmp yet
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open the run lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(b))
		if _, perr := strconv.Atoi(who); perr == nil {
			who = "process " + who
		} else {
			who = "another process"
		}
		return nil, fmt.Errorf("another nixbuilder-setup run (%s) holds %s; wait for it to finish and run again", who, path)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release drops the lock. The file stays; the lock dies with the process
// anyway, so a killed run never leaves a stale lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	defer l.f.Close()
	return unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
}
