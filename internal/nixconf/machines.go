package nixconf

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Machine is one builder of a machines file (or of the builders setting).
type Machine struct {
	// URI is the first field verbatim: "ssh-ng://root@alias", or "host" /
	// "user@host" without a scheme, as written.
	URI string
	// Systems the builder builds for; empty means Nix's default (the local
	// system).
	Systems []string
	// SSHKey is the identity file; empty means ssh's default.
	SSHKey string
	// MaxJobs is the number of builds run at once on the builder.
	MaxJobs int
	// SpeedFactor ranks builders; bigger is preferred.
	SpeedFactor float64
	// SupportedFeatures and MandatoryFeatures are system features such as
	// big-parallel.
	SupportedFeatures, MandatoryFeatures []string
	// PublicHostKey is the base64 of the host's public key line, as in
	// field 8.
	PublicHostKey string
}

// String formats m as one machines line Nix accepts. The first five fields
// are always written (with "-" for an empty one), the rest only as far as
// needed. An integral speed factor is written without a fraction, which is
// what Nix 2.8 requires.
func (m Machine) String() string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	f := []string{
		dash(m.URI),
		dash(strings.Join(m.Systems, ",")),
		dash(m.SSHKey),
		strconv.Itoa(m.MaxJobs),
		strconv.FormatFloat(m.SpeedFactor, 'f', -1, 64),
		dash(strings.Join(m.SupportedFeatures, ",")),
		dash(strings.Join(m.MandatoryFeatures, ",")),
		dash(m.PublicHostKey),
	}
	n := len(f)
	for n > 5 && f[n-1] == "-" {
		n--
	}
	return strings.Join(f[:n], " ")
}

// ParseMachines reads a machines file: one builder per line (or entries
// separated by ";", as in the builders setting), "#" comments, blank lines
// and CRLF line endings allowed, "-" or a missing field meaning the default.
// An entry Nix would refuse is an error naming its line. "@FILE" entries
// are refused too: they point at another file, which this pure parser does
// not read (BuilderFiles lists them).
func ParseMachines(data []byte) ([]Machine, error) {
	var out []Machine
	for i, raw := range splitLines(data) {
		for _, entry := range strings.Split(string(raw), ";") {
			e := strings.TrimSpace(entry)
			if j := strings.IndexByte(e, '#'); j >= 0 {
				e = e[:j]
			}
			if strings.TrimSpace(e) == "" {
				continue
			}
			m, err := parseMachine(e)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q: %w", i+1, lineText(raw), err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func machineFields(e string) []string {
	return strings.FieldsFunc(e, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

func parseMachine(e string) (Machine, error) {
	f := machineFields(e)
	set := func(i int) bool { return len(f) > i && f[i] != "-" }
	list := func(i int) []string {
		if !set(i) {
			return nil
		}
		var out []string
		for _, s := range strings.Split(f[i], ",") {
			if s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	m := Machine{MaxJobs: 1, SpeedFactor: 1}
	if !set(0) {
		return m, fmt.Errorf("no store URI in the first field")
	}
	if strings.HasPrefix(f[0], "@") {
		return m, fmt.Errorf("%s refers to another machines file, which is not read here", f[0])
	}
	m.URI = f[0]
	m.Systems = list(1)
	if set(2) {
		m.SSHKey = f[2]
	}
	if set(3) {
		n, err := strconv.ParseUint(f[3], 10, 31)
		if err != nil {
			return m, fmt.Errorf("field 4 (max jobs) %q is not a whole number", f[3])
		}
		m.MaxJobs = int(n)
	}
	if set(4) {
		x, err := strconv.ParseFloat(f[4], 64)
		if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
			return m, fmt.Errorf("field 5 (speed factor) %q is not a positive number", f[4])
		}
		m.SpeedFactor = x
	}
	m.SupportedFeatures = list(5)
	m.MandatoryFeatures = list(6)
	if set(7) {
		if _, err := base64.StdEncoding.DecodeString(f[7]); err != nil {
			return m, fmt.Errorf("field 8 (public host key) is not base64: %v", err)
		}
		m.PublicHostKey = f[7]
	}
	return m, nil
}

// BuilderEntries splits a builders value (or a machines file) into its
// entries the way Nix does: on ";" and newlines, comments stripped, blank
// entries dropped. "@FILE" entries are returned as they are.
func BuilderEntries(value string) []string {
	var out []string
	for _, e := range strings.FieldsFunc(value, func(r rune) bool { return r == ';' || r == '\n' }) {
		e = strings.TrimSpace(e)
		if j := strings.IndexByte(e, '#'); j >= 0 {
			e = strings.TrimSpace(e[:j])
		}
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// BuilderFiles returns the files a builders value points at with "@FILE".
func BuilderFiles(value string) []string {
	var out []string
	for _, e := range BuilderEntries(value) {
		if strings.HasPrefix(e, "@") {
			out = append(out, strings.TrimSpace(e[1:]))
		}
	}
	return out
}
