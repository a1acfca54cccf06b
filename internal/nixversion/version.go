// Package nixversion reads what kind of Nix is installed and how it runs:
// the `nix --version` line of every flavor (upstream Nix, Determinate Nix,
// Lix, distribution builds such as Debian's), the capabilities the steps
// depend on, how the installation is managed, and whether the running daemon
// has loaded the current configuration.
//
// Everything here is a pure function over command output or gathered facts,
// except the small /proc reader (procfs.go) that finds the Linux daemon and
// its start time.
package nixversion

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Flavor is the Nix implementation behind the `nix` command.
type Flavor int

const (
	// FlavorUnknown is a `nix` whose version line names an implementation
	// this package does not know (for example Snix).
	FlavorUnknown Flavor = iota
	// FlavorNix is upstream CppNix, including distribution builds (Debian's
	// nix-bin, nixpkgs' nix with a "+1" patch suffix).
	FlavorNix
	// FlavorDeterminate is Determinate Systems' distribution of Nix.
	FlavorDeterminate
	// FlavorLix is the Lix fork.
	FlavorLix
)

// String names the flavor as users know it.
func (f Flavor) String() string {
	switch f {
	case FlavorNix:
		return "Nix"
	case FlavorDeterminate:
		return "Determinate Nix"
	case FlavorLix:
		return "Lix"
	default:
		return "unknown Nix"
	}
}

// Version is a dotted version with an optional suffix. Pre holds a
// pre-release suffix ("pre20241101_abc", "beta.1", "dev-pre20250117-0d14c2b"),
// which sorts before the release it leads to; Build holds a "+…" suffix
// (nixpkgs' "2.34.7+1"), which is ignored when comparing.
type Version struct {
	Major, Minor, Patch int
	Pre                 string
	Build               string
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(.*)$`)

// ParseVersion parses "2.8.0", "2.25.0pre20241101_abc", "2.90-beta.0",
// "2.92.0-dev-pre20250117-0d14c2b" or "2.34.7+1".
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("parse Nix version %q: not of the form MAJOR.MINOR[.PATCH]", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	rest := m[4]
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
	}
	v.Pre = strings.TrimLeft(rest, "-.")
	return v, nil
}

// IsZero reports whether v was never set.
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or 1 as v sorts before, equal to or after o. A
// pre-release sorts before the release of the same numbers, because a
// pre-release snapshot of X may lack what X introduced; build suffixes are
// ignored.
func (v Version) Compare(o Version) int {
	for _, d := range [3]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	return strings.Compare(v.Pre, o.Pre)
}

// AtLeast reports whether v is the release major.minor.patch or later.
func (v Version) AtLeast(major, minor, patch int) bool {
	return v.Compare(Version{Major: major, Minor: minor, Patch: patch}) >= 0
}

// String prints the version as Nix does.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Info is what `nix --version` tells.
type Info struct {
	// Line is the version line as printed, for messages.
	Line   string
	Flavor Flavor
	// Version is the Nix (for Lix: the Lix) version that capabilities
	// depend on. For Determinate Nix it is the upstream Nix version printed
	// after the parentheses, not Determinate's own number.
	Version Version
	// DistVersion is Determinate Nix's own version ("3.8.2"); zero for the
	// other flavors.
	DistVersion Version
}

// ErrNotNix is returned for output that holds no `nix (…) VERSION` line.
var ErrNotNix = errors.New("not the output of nix --version")

// "nix (Nix) 2.8.0", "nix (Determinate Nix 3.8.2) 2.30.1",
// "nix (Lix, like Nix) 2.91.1". The program name is whatever argv[0] was
// ("nix", "nix-env", "nix-daemon" print the same line).
var lineRE = regexp.MustCompile(`^\s*(\S+)\s+\(([^)]*)\)\s+(\S+)\s*$`)

// Parse reads the output of `nix --version`. Only the first line that looks
// like a version line counts: Lix 2.92 and later print installation details
// after it ("System type: …"), and a nix.conf warning may come before it
// when stderr is merged.
func Parse(out []byte) (Info, error) {
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n") {
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		info, err := parseLine(strings.TrimSpace(line), m[2], m[3])
		if err != nil {
			return Info{}, err
		}
		return info, nil
	}
	return Info{}, fmt.Errorf("parse nix --version output %q: %w", firstLine(out), ErrNotNix)
}

func parseLine(line, impl, ver string) (Info, error) {
	v, err := ParseVersion(ver)
	if err != nil {
		return Info{}, fmt.Errorf("parse nix --version line %q: %w", line, err)
	}
	info := Info{Line: line, Version: v}
	impl = strings.TrimSpace(impl)
	switch {
	case strings.HasPrefix(impl, "Determinate Nix"):
		info.Flavor = FlavorDeterminate
		if dv := strings.TrimSpace(strings.TrimPrefix(impl, "Determinate Nix")); dv != "" {
			d, err := ParseVersion(dv)
			if err != nil {
				return Info{}, fmt.Errorf("parse Determinate Nix version in %q: %w", line, err)
			}
			info.DistVersion = d
		}
	case strings.HasPrefix(impl, "Lix"):
		info.Flavor = FlavorLix
	case impl == "Nix":
		info.Flavor = FlavorNix
	default:
		info.Flavor = FlavorUnknown
	}
	return info, nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// String describes the installation in one phrase: "Nix 2.8.0",
// "Determinate Nix 3.8.2 (Nix 2.30.1)", "Lix 2.91.1".
func (i Info) String() string {
	switch i.Flavor {
	case FlavorDeterminate:
		if i.DistVersion.IsZero() {
			return fmt.Sprintf("Determinate Nix (Nix %s)", i.Version)
		}
		return fmt.Sprintf("Determinate Nix %s (Nix %s)", i.DistVersion, i.Version)
	case FlavorUnknown:
		return i.Line
	default:
		return fmt.Sprintf("%s %s", i.Flavor, i.Version)
	}
}
