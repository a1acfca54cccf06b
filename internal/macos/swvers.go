package macos

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// SWVers is the output of `sw_vers`.
type SWVers struct {
	ProductName    string // "macOS" (11 and later), "Mac OS X" before
	ProductVersion string // "14.4.1"
	// ProductVersionExtra is the Rapid Security Response suffix, "(a)",
	// printed by macOS 13 and later when one is installed.
	ProductVersionExtra string
	BuildVersion        string // "23E224"
}

// ParseSWVers parses `sw_vers` output: "Key:<tabs>Value" lines. macOS 12
// separates with one tab, 13 and later with two; unknown keys (ReleaseType
// on betas) are ignored.
func ParseSWVers(out []byte) (SWVers, error) {
	var v SWVers
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "ProductName":
			v.ProductName = val
		case "ProductVersion":
			v.ProductVersion = val
		case "ProductVersionExtra":
			v.ProductVersionExtra = val
		case "BuildVersion":
			v.BuildVersion = val
		}
	}
	if v.ProductVersion == "" {
		return SWVers{}, fmt.Errorf("parse sw_vers output %q: no ProductVersion line", firstLine(out))
	}
	if _, err := strconv.Atoi(strings.SplitN(v.ProductVersion, ".", 2)[0]); err != nil {
		return SWVers{}, fmt.Errorf("parse sw_vers output: ProductVersion %q is not a version", v.ProductVersion)
	}
	return v, nil
}

// Major returns the major version: 10, 11, 12, 13, 14, 15, 26.
func (v SWVers) Major() int {
	n, _ := strconv.Atoi(strings.SplitN(v.ProductVersion, ".", 2)[0])
	return n
}

// AtLeast reports whether the version is major.minor or later.
func (v SWVers) AtLeast(major, minor int) bool {
	parts := strings.Split(v.ProductVersion, ".")
	got := [2]int{}
	for i := 0; i < 2 && i < len(parts); i++ {
		got[i], _ = strconv.Atoi(parts[i])
	}
	return got[0] > major || got[0] == major && got[1] >= minor
}

// String reads like "macOS 14.4.1 (a) (23E224)".
func (v SWVers) String() string {
	s := v.ProductName
	if s == "" {
		s = "macOS"
	}
	s += " " + v.ProductVersion
	if v.ProductVersionExtra != "" {
		s += " " + v.ProductVersionExtra
	}
	if v.BuildVersion != "" {
		s += " (" + v.BuildVersion + ")"
	}
	return s
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
