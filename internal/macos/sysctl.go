package macos

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSysctlBool parses the output of `sysctl -n` for a 0/1 value such as
// hw.optional.arm64 or sysctl.proc_translated.
func ParseSysctlBool(out []byte) (bool, error) {
	switch s := strings.TrimSpace(string(out)); s {
	case "1":
		return true, nil
	case "0":
		return false, nil
	default:
		return false, fmt.Errorf("parse sysctl output %q: want 0 or 1", s)
	}
}

// ParseSysctlInt parses the output of `sysctl -n` for an integer such as
// hw.ncpu.
func ParseSysctlInt(out []byte) (int, error) {
	s := strings.TrimSpace(string(out))
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("parse sysctl output %q: want an integer", s)
	}
	return n, nil
}

// ParseSysctlString returns the value of `sysctl -n` for a string such as
// machdep.cpu.brand_string.
func ParseSysctlString(out []byte) string {
	return strings.TrimSpace(string(out))
}

// IsUnknownOID reports whether sysctl's error output says the name does not
// exist on this kernel: hw.optional.arm64 on Intel Macs,
// sysctl.proc_translated on macOS before 11. Only that exact answer may be
// read as "absent"; any other failure is an error, never "Intel".
func IsUnknownOID(output, name string) bool {
	return strings.Contains(output, "unknown oid '"+name+"'")
}
