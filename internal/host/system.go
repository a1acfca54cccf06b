package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// FileInfo is what the tool needs to know about a path, as Lstat sees it.
type FileInfo struct {
	Exists  bool        `json:"exists"`
	Mode    fs.FileMode `json:"mode"` // full mode, including type bits
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
	Symlink bool        `json:"symlink"`
	Target  string      `json:"target,omitempty"` // symlink target, as written
	ModTime time.Time   `json:"modTime"`
}

// Files is the file access steps use. Paths may be root-only; the real
// implementation reaches them through the privileged runner.
type Files interface {
	ReadFile(path string) ([]byte, error) // fs.ErrNotExist for a missing file
	Stat(path string) (FileInfo, error)   // a missing file is Exists=false, not an error
	WriteFile(path string, data []byte, opt WriteOptions) error
	Remove(path string) error // a missing file is not an error
	MkdirAll(path string, perm fs.FileMode) error
}

// LocalFiles acts directly, with the process's own rights.
type LocalFiles struct{}

// ReadFile reads path.
func (LocalFiles) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// Stat describes path without following a symlink.
func (LocalFiles) Stat(path string) (FileInfo, error) { return lstat(path) }

// WriteFile writes path atomically.
func (LocalFiles) WriteFile(path string, data []byte, opt WriteOptions) error {
	return WriteFileAtomic(path, data, opt)
}

// Remove removes path.
func (LocalFiles) Remove(path string) error { return RemoveFile(path) }

// MkdirAll creates path and its parents.
func (LocalFiles) MkdirAll(path string, perm fs.FileMode) error {
	if err := os.MkdirAll(path, perm); err != nil {
		return fmt.Errorf("create %s: %w", path, explain(err))
	}
	return nil
}

func lstat(path string) (FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileInfo{}, nil
	}
	if err != nil {
		return FileInfo{}, err
	}
	info := FileInfo{Exists: true, Mode: fi.Mode(), UID: -1, GID: -1, ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.UID, info.GID = int(st.Uid), int(st.Gid)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		info.Symlink = true
		info.Target, _ = os.Readlink(path)
	}
	return info, nil
}

// SudoFiles reaches root-only files by running this program again through
// sudo (the privileged runner) with a hidden subcommand, so that the same
// atomic write code runs as root and no shell is involved. Reads are tried
// directly first, since most files the tool reads are world-readable.
type SudoFiles struct {
	Runner Runner
	Self   string // path of this program
}

func (s SudoFiles) call(op string, stdin []byte, args ...string) ([]byte, error) {
	argv := append([]string{s.Self, PrivilegedCommand, op}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.Runner.Run(ctx, Cmd{Args: argv, Stdin: stdin, Root: true})
	if err != nil {
		var ce *CmdError
		if errors.As(err, &ce) && bytes.Contains([]byte(ce.Stderr), []byte("password is required")) {
			return nil, &NeedsRootError{Path: args[0]}
		}
		if errors.As(err, &ce) && ce.Exit == 3 {
			return nil, fs.ErrNotExist
		}
		return nil, err
	}
	return out, nil
}

// ReadFile reads path, as root when the user may not.
func (s SudoFiles) ReadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return b, err
	}
	return s.call("read", nil, path)
}

// Stat describes path, as root when the user may not.
func (s SudoFiles) Stat(path string) (FileInfo, error) {
	fi, err := lstat(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return fi, err
	}
	out, err := s.call("stat", nil, path)
	if err != nil {
		return FileInfo{}, err
	}
	err = json.Unmarshal(out, &fi)
	return fi, err
}

// WriteFile writes path atomically as root.
func (s SudoFiles) WriteFile(path string, data []byte, opt WriteOptions) error {
	_, err := s.call("write", data, path, strconv.FormatUint(uint64(opt.Mode.Perm()), 8),
		strconv.Itoa(opt.UID), strconv.Itoa(opt.GID), strconv.FormatBool(opt.Backup), strconv.FormatBool(opt.FollowSymlink), strconv.FormatBool(opt.Enforce))
	return err
}

// Remove removes path as root.
func (s SudoFiles) Remove(path string) error {
	_, err := s.call("remove", nil, path)
	return err
}

// MkdirAll creates path as root.
func (s SudoFiles) MkdirAll(path string, perm fs.FileMode) error {
	_, err := s.call("mkdir", nil, path, strconv.FormatUint(uint64(perm.Perm()), 8))
	return err
}

// NeedsRootError is a file only root may read or write, while sudo would
// ask for a password and there is no terminal to ask on.
type NeedsRootError struct{ Path string }

func (e *NeedsRootError) Error() string {
	return e.Path + " is readable by root only, and sudo needs a password"
}

// PrivilegedCommand is the hidden subcommand SudoFiles runs as root.
const PrivilegedCommand = "__privileged-file"

// ServePrivileged carries out one SudoFiles operation; the CLI calls it for
// PrivilegedCommand. A missing file exits with code 3.
func ServePrivileged(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New("usage: " + PrivilegedCommand + " OP PATH [ARGS]")
	}
	op, path := args[0], args[1]
	l := LocalFiles{}
	switch op {
	case "read":
		b, err := l.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "stat":
		fi, err := l.Stat(path)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(fi)
	case "write":
		if len(args) != 8 {
			return errors.New("write: want PATH MODE UID GID BACKUP FOLLOW ENFORCE")
		}
		mode, err1 := strconv.ParseUint(args[2], 8, 32)
		uid, err2 := strconv.Atoi(args[3])
		gid, err3 := strconv.Atoi(args[4])
		backup, err4 := strconv.ParseBool(args[5])
		follow, err5 := strconv.ParseBool(args[6])
		enforce, err6 := strconv.ParseBool(args[7])
		if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		data, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		return l.WriteFile(path, data, WriteOptions{Mode: fs.FileMode(mode), UID: uid, GID: gid, Backup: backup, FollowSymlink: follow, Enforce: enforce})
	case "remove":
		return l.Remove(path)
	case "mkdir":
		mode, err := strconv.ParseUint(args[2], 8, 32)
		if err != nil {
			return err
		}
		return l.MkdirAll(path, fs.FileMode(mode))
	}
	return fmt.Errorf("unknown operation %q", op)
}
