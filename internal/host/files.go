package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// BackupSuffix names the copy of a file's first original, kept so that
// uninstall can prove it restored the file byte for byte.
const BackupSuffix = ".before-nixbuilder"

// WriteOptions tune WriteFileAtomic.
type WriteOptions struct {
	Mode fs.FileMode // for a new file; an existing file keeps its mode
	// UID and GID for a new file; -1 leaves the creator's. An existing
	// file keeps its owner.
	UID, GID int
	// Backup saves the file as it was before our first change, once.
	Backup bool
	// FollowSymlink writes the symlink's target instead of refusing.
	FollowSymlink bool
	// Enforce applies Mode, UID and GID to an existing file too (for a
	// key whose permissions are wrong).
	Enforce bool
}

// beforeRename lets tests simulate a crash between writing the temp file
// and renaming it into place.
var beforeRename func(tmp string) error

// WriteFileAtomic replaces path with data so that, whatever happens, the
// file is either untouched or fully written: the data goes to a temp file
// in the same directory, is synced, and is renamed over the original; then
// the directory is synced. Mode and owner of an existing file are kept. It
// refuses to write through a symlink unless told to.
func WriteFileAtomic(path string, data []byte, opt WriteOptions) error {
	mode := opt.Mode
	if mode == 0 {
		mode = 0o644
	}
	uid, gid := opt.UID, opt.GID
	if uid == 0 && gid == 0 && os.Geteuid() != 0 {
		uid, gid = -1, -1
	}
	fi, err := os.Lstat(path)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("inspect %s: %w", path, err)
	case exists && fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		if !opt.FollowSymlink {
			return fmt.Errorf("refusing to write %s: it is a symlink to %s (another tool may own it); change the target yourself or remove the link", path, target)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		return WriteFileAtomic(target, data, WriteOptions{Mode: opt.Mode, UID: opt.UID, GID: opt.GID, Backup: opt.Backup})
	case exists && !fi.Mode().IsRegular():
		return fmt.Errorf("refusing to write %s: it is not a regular file", path)
	}
	if exists && !opt.Enforce {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if exists {
		if opt.Backup {
			if err := backupOnce(path, mode, uid, gid); err != nil {
				return err
			}
		}
	}
	return writeReplace(path, data, mode, uid, gid)
}

func writeReplace(path string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".nixbuilder-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, explain(err))
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, explain(err))
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: set mode: %w", path, err)
	}
	if uid >= 0 || gid >= 0 {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("write %s: set owner: %w", path, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, explain(err))
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, explain(err))
	}
	if beforeRename != nil {
		if err = beforeRename(name); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err = os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, explain(err))
	}
	return syncDir(dir)
}

func backupOnce(path string, mode fs.FileMode, uid, gid int) error {
	b := path + BackupSuffix
	if _, err := os.Lstat(b); err == nil {
		return nil // the first original is already saved: never overwrite it
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	if err := writeReplace(b, orig, mode, uid, gid); err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // some platforms cannot open directories; the rename stands
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}

// explain adds what to do to the errors users meet when writing files.
func explain(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w (the disk is full: free some space and run again; the original file is untouched)", err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w (the file system is read-only)", err)
	case errors.Is(err, fs.ErrPermission) && os.Geteuid() == 0:
		return fmt.Errorf("%w (refused even to root: is the file or its directory immutable (chattr +i) or on a read-only mount?)", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (permission denied: this needs root)", err)
	}
	return err
}

// RemoveFile removes path; a missing file is not an error.
func RemoveFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, explain(err))
	}
	return nil
}
