//go:build unix

package sshkeys

import (
	"io/fs"
	"syscall"
)

// FactsFromFileInfo takes the facts InspectKey needs from an Lstat result.
// The UID is -1 when the platform does not report one.
func FactsFromFileInfo(fi fs.FileInfo) FileFacts {
	f := FileFacts{Mode: fi.Mode().Perm(), UID: -1, IsSymlink: fi.Mode()&fs.ModeSymlink != 0}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.UID = int(st.Uid)
	}
	return f
}
