package nixversion

import (
	"time"

	"golang.org/x/sys/unix"
)

// preciseBootTime derives the boot time from CLOCK_BOOTTIME, the clock that
// /proc/<pid>/stat's starttime counts on; /proc/stat's btime is the same
// instant truncated to a second.
func preciseBootTime() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
}
