package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// current is a file as it is now.
type current struct {
	Path string
	Info host.FileInfo
	Data []byte // nil when the file does not exist
}

// read reads path through the privileged file layer; a missing file is
// not an error.
func (env *Env) read(path string) (current, error) {
	c := current{Path: path}
	info, err := env.Files.Stat(path)
	if err != nil {
		return c, fmt.Errorf("inspect %s: %w", path, err)
	}
	c.Info = info
	if !info.Exists {
		return c, nil
	}
	if info.Mode.IsDir() {
		return c, fmt.Errorf("%s is a directory; move it away and run again", path)
	}
	data, err := env.Files.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	c.Data = data
	return c, nil
}

// change describes writing data over c.
func (c current) change(data []byte) plan.Change {
	return plan.FileChange(c.Path, c.Data, data, c.Info.Exists, true)
}

// rootUID is the owner expected of root-owned files: root, except in tests
// that re-root the machine without being root.
func (env *Env) rootUID() int {
	if env.Paths.Root != "/" && os.Geteuid() != 0 {
		return os.Geteuid()
	}
	return 0
}

// rootGID is the group of root-owned files, as rootUID is their owner.
func rootGID(env *Env) int {
	if env.rootUID() != 0 {
		return os.Getegid()
	}
	return 0
}

// write writes data to path as root: atomic, with the first original
// backed up (for files the user may have had before us).
func (env *Env) write(path string, data []byte, mode fs.FileMode, backup bool) error {
	if err := env.Files.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return env.Files.WriteFile(path, data, host.WriteOptions{Mode: mode, UID: env.rootUID(), GID: rootGID(env), Backup: backup})
}

// isOriginal reports whether data holds nothing of ours: only such a file
// is the user's original, worth a backup before our first change. A file
// we created, or already changed, is never backed up (its backup would
// hold our own lines).
func (env *Env) isOriginal(data []byte) bool {
	_, found, err := nixconf.ManagedBlock(data, env.Name)
	return err == nil && !found
}

// readProblem is the result for a file that could not be read: blocked
// when only root may read it and sudo cannot ask for the password here.
func readProblem(err error) plan.Result {
	var nr *host.NeedsRootError
	if errors.As(err, &nr) {
		return plan.Block(err.Error(), "run `sudo -v` first (the tool then reads it through sudo), or run from a terminal")
	}
	return plan.Fail(err.Error(), "")
}
