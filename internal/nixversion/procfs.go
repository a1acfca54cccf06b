package nixversion

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of the time fields in /proc/<pid>/stat.
// It is part of the kernel's user-space ABI and 100 on every architecture
// Nix supports; Go cannot call sysconf(_SC_CLK_TCK) without cgo.
const ClockTicks = 100

// DaemonComm is the command name of the Nix daemon in /proc/<pid>/comm.
const DaemonComm = "nix-daemon"

// ProcStat holds the fields of /proc/<pid>/stat that we use.
type ProcStat struct {
	PID  int
	Comm string
	PPID int
	// StartTicks is field 22, starttime: clock ticks after boot.
	StartTicks uint64
}

// ParseProcStat parses the one line of /proc/<pid>/stat. The command name
// sits in parentheses and may itself hold spaces and ")", so the fields are
// counted from the last ")".
func ParseProcStat(data []byte) (ProcStat, error) {
	s := strings.TrimSpace(string(data))
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: no command name in parentheses", trunc(s))
	}
	var st ProcStat
	var err error
	if st.PID, err = strconv.Atoi(strings.TrimSpace(s[:open])); err != nil {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: pid: %w", trunc(s), err)
	}
	st.Comm = s[open+1 : closing]
	// rest[0] is field 3 (state), so field n is rest[n-3].
	rest := strings.Fields(s[closing+1:])
	if len(rest) < 22-3+1 {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: %d fields after the command name, want at least 20", trunc(s), len(rest))
	}
	if st.PPID, err = strconv.Atoi(rest[4-3]); err != nil {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: ppid: %w", trunc(s), err)
	}
	if st.StartTicks, err = strconv.ParseUint(rest[22-3], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("parse /proc stat %q: starttime: %w", trunc(s), err)
	}
	return st, nil
}

// ParseBtime returns the boot time from /proc/stat's "btime" line (whole
// seconds since the epoch).
func ParseBtime(procStat []byte) (time.Time, error) {
	for _, line := range bytes.Split(procStat, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 2 && f[0] == "btime" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parse btime in /proc/stat: %w", err)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, errors.New("parse /proc/stat: no btime line")
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// ProcFS reads process facts from a proc file system.
type ProcFS struct {
	// Root is the mount point, "/proc" on a real machine.
	Root string
	// Boot returns the boot time. Nil means btime from Root/stat, which is
	// truncated to whole seconds; LinuxProc sets a sub-second clock.
	Boot func() (time.Time, error)
}

// LinuxProc is the machine's own /proc, with the boot time computed from
// CLOCK_BOOTTIME (the clock starttime is measured on) rather than the
// whole-second btime, so start times are accurate to a clock tick.
func LinuxProc() ProcFS {
	return ProcFS{Root: "/proc", Boot: preciseBootTime}
}

func (p ProcFS) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

// BootTime returns when the machine booted.
func (p ProcFS) BootTime() (time.Time, error) {
	if p.Boot != nil {
		if t, err := p.Boot(); err == nil {
			return t, nil
		}
	}
	name := filepath.Join(p.root(), "stat")
	data, err := os.ReadFile(name)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", name, err)
	}
	return ParseBtime(data)
}

// Stat reads /proc/<pid>/stat.
func (p ProcFS) Stat(pid int) (ProcStat, error) {
	name := filepath.Join(p.root(), strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(name)
	if err != nil {
		return ProcStat{}, fmt.Errorf("read %s: %w", name, err)
	}
	st, err := ParseProcStat(data)
	if err != nil {
		return ProcStat{}, fmt.Errorf("%s: %w", name, err)
	}
	return st, nil
}

// StartTime returns when process pid started.
func (p ProcFS) StartTime(pid int) (time.Time, error) {
	st, err := p.Stat(pid)
	if err != nil {
		return time.Time{}, err
	}
	boot, err := p.BootTime()
	if err != nil {
		return time.Time{}, err
	}
	return boot.Add(ticksToDuration(st.StartTicks)), nil
}

func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks/ClockTicks)*time.Second +
		time.Duration(ticks%ClockTicks)*time.Second/ClockTicks
}

// FindByComm returns the pids whose /proc/<pid>/comm is comm, in ascending
// order. Processes that exit while we scan are skipped.
func (p ProcFS) FindByComm(comm string) ([]int, error) {
	entries, err := os.ReadDir(p.root())
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", p.root(), err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(p.root(), e.Name(), "comm"))
		if err != nil {
			continue
		}
		if strings.TrimRight(string(data), "\n") == comm {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// ErrNoDaemon is returned by FindDaemon when no nix-daemon runs.
var ErrNoDaemon = errors.New("no nix-daemon process is running")

// FindDaemon returns the pid of the listening nix-daemon: the daemon forks
// one child per client connection, all named nix-daemon, so the one whose
// parent is not a nix-daemon is the one that read nix.conf at start. With
// several such roots (two daemons?) the oldest wins.
func (p ProcFS) FindDaemon() (int, error) {
	pids, err := p.FindByComm(DaemonComm)
	if err != nil {
		return 0, err
	}
	isDaemon := make(map[int]bool, len(pids))
	for _, pid := range pids {
		isDaemon[pid] = true
	}
	best, bestStart := 0, uint64(0)
	for _, pid := range pids {
		st, err := p.Stat(pid)
		if err != nil || isDaemon[st.PPID] {
			continue
		}
		if best == 0 || st.StartTicks < bestStart {
			best, bestStart = pid, st.StartTicks
		}
	}
	if best == 0 {
		return 0, ErrNoDaemon
	}
	return best, nil
}
