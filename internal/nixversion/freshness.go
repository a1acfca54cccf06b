package nixversion

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ConfFile is one configuration file the daemon reads at start, with its
// last change.
type ConfFile struct {
	Path    string
	ModTime time.Time
}

// DefaultSlack absorbs the granularity of the start times we can read
// (clock ticks on Linux, seconds from ps-style sources) so that a file
// written just before a restart is not taken as newer than the daemon. A
// real edit less than a second after a daemon start is not a case worth a
// false "stale" after every apply.
const DefaultSlack = time.Second

// Freshness is CheckFreshness's answer.
type Freshness struct {
	// Stale is true when a file changed after the daemon started.
	Stale bool
	// Started is the daemon's start time that was compared.
	Started time.Time
	// Newest is the most recently changed file (zero when files was empty).
	Newest ConfFile
	// Detail says what was compared, one line.
	Detail string
}

// CheckFreshness decides whether the daemon that started at started has
// loaded the current configuration: the daemon reads nix.conf (and its
// includes) only at start, while the machines file is re-read for every
// build and so never makes it stale. It is stale when the newest file
// changed more than slack after the start.
func CheckFreshness(started time.Time, files []ConfFile, slack time.Duration) Freshness {
	f := Freshness{Started: started}
	for _, c := range files {
		if f.Newest.Path == "" || c.ModTime.After(f.Newest.ModTime) {
			f.Newest = c
		}
	}
	const layout = "2006-01-02 15:04:05"
	switch {
	case f.Newest.Path == "":
		f.Detail = "no configuration file to compare with"
	case f.Newest.ModTime.After(started.Add(slack)):
		f.Stale = true
		f.Detail = fmt.Sprintf("%s changed at %s, after the daemon started at %s",
			f.Newest.Path, f.Newest.ModTime.Local().Format(layout), started.Local().Format(layout))
	default:
		f.Detail = fmt.Sprintf("daemon started at %s, after the last change to %s (%s)",
			started.Local().Format(layout), f.Newest.Path, f.Newest.ModTime.Local().Format(layout))
	}
	return f
}

// StatConfFiles returns the change times of the files that exist among
// paths; missing files are skipped (an `!include` may name one). For a
// symlink the later of the link's and the target's times counts: nix-darwin
// swaps links into the store, whose files all carry the epoch as mtime.
func StatConfFiles(paths []string) ([]ConfFile, error) {
	var out []ConfFile
	for _, p := range paths {
		li, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", p, err)
		}
		mod := li.ModTime()
		if li.Mode()&fs.ModeSymlink != 0 {
			if ti, err := os.Stat(p); err == nil && ti.ModTime().After(mod) {
				mod = ti.ModTime()
			}
		}
		out = append(out, ConfFile{Path: p, ModTime: mod})
	}
	return out, nil
}

// SystemdRestartCommand is the argv that restarts the daemon on Linux with
// systemd; it runs through the privileged runner.
func SystemdRestartCommand() []string {
	return []string{"systemctl", "restart", "nix-daemon"}
}
