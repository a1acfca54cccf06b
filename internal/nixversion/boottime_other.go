//go:build !linux

package nixversion

import (
	"errors"
	"time"
)

// preciseBootTime exists only on Linux; elsewhere ProcFS falls back to
// Root/stat, which a test may provide.
func preciseBootTime() (time.Time, error) {
	return time.Time{}, errors.New("no CLOCK_BOOTTIME outside Linux")
}
