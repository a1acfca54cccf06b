package macos

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Supported reports whether this build runs on macOS, where the probes
// work.
func Supported() bool { return true }

// NewProbe returns a Probe for this Mac: commands run with os/exec, files
// are stat'ed directly, and start times come from the kernel.
func NewProbe() *Probe {
	return &Probe{Run: ExecRunner{}, Stat: os.Stat, StartTime: kernelStartTime}
}

// kernelStartTime reads p_starttime from kern.proc.pid.<pid>, the source
// ps uses, to the microsecond; any user may read it for any process.
func kernelStartTime(pid int) (time.Time, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return time.Time{}, fmt.Errorf("sysctl kern.proc.pid.%d: %w", pid, err)
	}
	if kp.Proc.P_pid != int32(pid) {
		return time.Time{}, fmt.Errorf("sysctl kern.proc.pid.%d: no such process", pid)
	}
	tv := kp.Proc.P_starttime
	return time.Unix(int64(tv.Sec), int64(tv.Usec)*1000), nil
}
