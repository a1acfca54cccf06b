package sshkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// A known_hosts file is edited line by line. A line is its content plus its
// terminator ("\n", "\r\n", or nothing for a last line without newline);
// lines that are not ours are copied byte for byte.
type khLine struct {
	text string // without the terminator
	eol  string
}

func splitLines(b []byte) []khLine {
	var out []khLine
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, khLine{text: string(b)})
			break
		}
		text, eol := b[:i], "\n"
		if len(text) > 0 && text[len(text)-1] == '\r' {
			text, eol = text[:len(text)-1], "\r\n"
		}
		out = append(out, khLine{text: string(text), eol: eol})
		b = b[i+1:]
	}
	return out
}

func joinLines(ls []khLine) []byte {
	var buf bytes.Buffer
	for _, l := range ls {
		buf.WriteString(l.text)
		buf.WriteString(l.eol)
	}
	return buf.Bytes()
}

// parsedLine is what a known_hosts line holds, through ssh.ParseKnownHosts.
type parsedLine struct {
	blank   bool // empty or comment
	err     error
	marker  string // "cert-authority", "revoked" or ""
	hosts   []string
	key     ssh.PublicKey
	hostsAt [2]int // byte range of the host list in the line text
}

func parseLine(text string) parsedLine {
	t := strings.TrimSuffix(text, "\r")
	trimmed := strings.Trim(t, " \t")
	if trimmed == "" || trimmed[0] == '#' {
		return parsedLine{blank: true}
	}
	if !strings.ContainsAny(trimmed, " \t") {
		// ssh.ParseKnownHosts silently skips a one-word line; OpenSSH
		// complains about it, and so do we.
		return parsedLine{err: errors.New("a single word, not `hosts keytype key`")}
	}
	marker, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(t))
	if err == io.EOF {
		return parsedLine{blank: true}
	}
	if err != nil {
		return parsedLine{err: err}
	}
	// Locate the host list (the first field, or the second after a
	// marker) the way ssh.ParseKnownHosts splits fields: on spaces and tabs.
	start := len(t) - len(strings.TrimLeft(t, " \t"))
	if t[start] == '@' {
		if marker != "cert-authority" && marker != "revoked" {
			return parsedLine{err: fmt.Errorf("unknown marker @%s", marker)}
		}
		start += strings.IndexAny(t[start:], " \t")
		start += len(t[start:]) - len(strings.TrimLeft(t[start:], " \t"))
	}
	end := start + strings.IndexAny(t[start:], " \t")
	return parsedLine{marker: marker, hosts: hosts, key: key, hostsAt: [2]int{start, end}}
}

// checkHost validates and normalises the host argument of the editors: the
// ssh alias (used as HostKeyAlias), or host:port.
func checkHost(host string) (string, error) {
	if host == "" || strings.ContainsAny(host, " \t\r\n,#*?!|@") {
		return "", fmt.Errorf("known_hosts: %q is not a host name we can write", host)
	}
	return knownhosts.Normalize(host), nil
}

// patternIs reports whether one entry of a host list names exactly host (in
// its normalised form). Hashed, negated and wildcard patterns never do.
func patternIs(p, host string) bool {
	if p == "" || strings.ContainsAny(p, "|!*?") {
		return false
	}
	return knownhosts.Normalize(p) == host
}

// classify says how a plain (unmarked, parsed) line relates to host: it names
// host only (onlyHost), or among others (mixed), or not at all.
func classify(p parsedLine, host string) (onlyHost, mixed bool) {
	if p.blank || p.err != nil || p.marker != "" {
		return false, false
	}
	named, others := false, false
	for _, h := range p.hosts {
		switch {
		case patternIs(h, host):
			named = true
		case h != "":
			others = true
		}
	}
	return named && !others, named && others
}

// withoutHost rewrites a mixed line's host list without host, keeping every
// other byte.
func withoutHost(text string, p parsedLine, host string) string {
	var keep []string
	for _, h := range p.hosts {
		if !patternIs(h, host) {
			keep = append(keep, h)
		}
	}
	return text[:p.hostsAt[0]] + strings.Join(keep, ",") + text[p.hostsAt[1]:]
}

// UpsertKnownHost makes old trust key for host, and only key: afterwards
// exactly one line trusts key for host. Other lines that name only host are
// dropped (their first one is replaced in place, or kept as is when it
// already trusts key); lines naming host among other hosts lose host from
// their list; every other line — comments, blank lines, hashed entries,
// @cert-authority and @revoked lines, other hosts, malformed lines — is kept
// byte for byte. A new line is appended with the file's line ending. The
// result is idempotent, and RemoveKnownHost undoes an append exactly.
//
// host is the ssh alias (the HostKeyAlias), written bare: "nixbuilder".
func UpsertKnownHost(old []byte, host string, key ssh.PublicKey) ([]byte, error) {
	h, err := checkHost(host)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("known_hosts: no key to trust")
	}
	want := knownhosts.Line([]string{h}, key)

	lines := splitLines(old)
	parsed := make([]parsedLine, len(lines))
	keepAt := -1 // an only-host line that already trusts key
	for i, l := range lines {
		parsed[i] = parseLine(l.text)
		if only, _ := classify(parsed[i], h); only && keepAt < 0 && keysEqual(parsed[i].key, key) {
			keepAt = i
		}
	}

	var out []khLine
	placed := keepAt >= 0
	for i, l := range lines {
		only, mixed := classify(parsed[i], h)
		switch {
		case i == keepAt:
			out = append(out, l)
		case only && !placed:
			out = append(out, khLine{text: want, eol: l.eol})
			placed = true
		case only:
			out = dropLine(out, l)
		case mixed:
			out = append(out, khLine{text: withoutHost(l.text, parsed[i], h), eol: l.eol})
		default:
			out = append(out, l)
		}
	}
	if !placed {
		eol := lineEnding(lines)
		if n := len(out); n > 0 && out[n-1].eol == "" {
			// No final newline: keep it that way, so that removing our
			// line gives the original bytes back.
			out[n-1].eol = eol
			if strings.HasSuffix(out[n-1].text, "\r") {
				// A lone "\n" would turn the line's own "\r" into
				// the start of a CRLF, which removal could not undo.
				out[n-1].eol = "\r\n"
			}
			out = append(out, khLine{text: want})
		} else {
			out = append(out, khLine{text: want, eol: eol})
		}
	}
	return joinLines(out), nil
}

// RemoveKnownHost removes host from old: lines that name only host go, lines
// naming it among other hosts lose it from their list, everything else is
// kept byte for byte (hashed entries too: see RemoveHashedKnownHost).
func RemoveKnownHost(old []byte, host string) ([]byte, error) {
	h, err := checkHost(host)
	if err != nil {
		return nil, err
	}
	var out []khLine
	for _, l := range splitLines(old) {
		p := parseLine(l.text)
		switch only, mixed := classify(p, h); {
		case only:
			out = dropLine(out, l)
		case mixed:
			out = append(out, khLine{text: withoutHost(l.text, p, h), eol: l.eol})
		default:
			out = append(out, l)
		}
	}
	return joinLines(out), nil
}

// RemoveHashedKnownHost removes the unmarked hashed entries (|1|salt|hash)
// that match host. Hashed entries hide which host they are for, so the
// steps remove them only with the user's consent.
func RemoveHashedKnownHost(old []byte, host string) ([]byte, error) {
	h, err := checkHost(host)
	if err != nil {
		return nil, err
	}
	var out []khLine
	for _, l := range splitLines(old) {
		p := parseLine(l.text)
		if p.err == nil && !p.blank && p.marker == "" && hashedMatch(p.hosts, h) {
			out = dropLine(out, l)
			continue
		}
		out = append(out, l)
	}
	return joinLines(out), nil
}

// dropLine leaves l out. When l was the last line and had no newline, the
// line before it loses its newline too, so that the file ends as it did
// before l was appended.
func dropLine(out []khLine, l khLine) []khLine {
	if l.eol == "" && len(out) > 0 {
		out[len(out)-1].eol = ""
	}
	return out
}

func lineEnding(lines []khLine) string {
	for _, l := range lines {
		if l.eol != "" {
			return l.eol
		}
	}
	return "\n"
}

// hashedMatch reports whether one of the hashed patterns in hosts is the
// HMAC-SHA1 of host, as OpenSSH's HashKnownHosts writes it. (x/crypto's
// knownhosts checks these only through files, so the check is done here.)
func hashedMatch(hosts []string, host string) bool {
	for _, p := range hosts {
		if !strings.HasPrefix(p, "|") {
			continue
		}
		parts := strings.Split(p, "|")
		if len(parts) != 4 || parts[1] != "1" {
			continue
		}
		salt, err1 := base64.StdEncoding.DecodeString(parts[2])
		sum, err2 := base64.StdEncoding.DecodeString(parts[3])
		if err1 != nil || err2 != nil {
			continue
		}
		mac := hmac.New(sha1.New, salt)
		mac.Write([]byte(host))
		if hmac.Equal(mac.Sum(nil), sum) {
			return true
		}
	}
	return false
}

// KnownHostEntry is one known_hosts line that concerns a host.
type KnownHostEntry struct {
	Line   int    // 1-based
	Text   string // the line, without its line ending
	Marker string // "", "cert-authority" or "revoked"
	Hosts  []string
	Key    ssh.PublicKey
}

// MalformedLine is a known_hosts line that does not parse. It is kept by
// every editor; it is reported so that the user can fix it.
type MalformedLine struct {
	Line int
	Text string
	Err  error
}

// KnownHostsReport is what a known_hosts file says about one host.
type KnownHostsReport struct {
	// Plain lists the unmarked, unhashed lines naming the host (alone or
	// among others): these are the lines our editors own.
	Plain []KnownHostEntry
	// Hashed lists the unmarked hashed entries matching the host. OpenSSH
	// trusts them too; they are removed only with consent.
	Hashed []KnownHostEntry
	// Marked lists @revoked lines (any host: a revoked key is revoked
	// everywhere) and @cert-authority lines naming the host.
	Marked []KnownHostEntry
	// Malformed lists every line that does not parse, for any host.
	Malformed []MalformedLine
}

// Trusts reports whether key is trusted for the host by a plain or hashed
// line, and not revoked.
func (r KnownHostsReport) Trusts(key ssh.PublicKey) bool {
	for _, e := range r.Marked {
		if e.Marker == "revoked" && keysEqual(e.Key, key) {
			return false
		}
	}
	for _, e := range append(append([]KnownHostEntry(nil), r.Plain...), r.Hashed...) {
		if keysEqual(e.Key, key) {
			return true
		}
	}
	return false
}

// Stale returns the plain and hashed entries for the host whose key is not
// key: after a host key change these are what the user sees in doctor.
func (r KnownHostsReport) Stale(key ssh.PublicKey) []KnownHostEntry {
	var out []KnownHostEntry
	for _, e := range append(append([]KnownHostEntry(nil), r.Plain...), r.Hashed...) {
		if !keysEqual(e.Key, key) {
			out = append(out, e)
		}
	}
	return out
}

// ReadKnownHosts reports what data (a known_hosts file) says about host.
// Wildcard patterns are not evaluated.
func ReadKnownHosts(data []byte, host string) (KnownHostsReport, error) {
	h, err := checkHost(host)
	if err != nil {
		return KnownHostsReport{}, err
	}
	var r KnownHostsReport
	for i, l := range splitLines(data) {
		p := parseLine(l.text)
		if p.blank {
			continue
		}
		if p.err != nil {
			r.Malformed = append(r.Malformed, MalformedLine{Line: i + 1, Text: l.text, Err: p.err})
			continue
		}
		e := KnownHostEntry{Line: i + 1, Text: l.text, Marker: p.marker, Hosts: p.hosts, Key: p.key}
		named := false
		for _, hp := range p.hosts {
			named = named || patternIs(hp, h)
		}
		switch {
		case p.marker == "revoked" || (p.marker != "" && (named || hashedMatch(p.hosts, h))):
			r.Marked = append(r.Marked, e)
		case p.marker != "":
		case named:
			r.Plain = append(r.Plain, e)
		case hashedMatch(p.hosts, h):
			r.Hashed = append(r.Hashed, e)
		}
	}
	return r, nil
}
