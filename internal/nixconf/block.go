package nixconf

import (
	"bytes"
	"fmt"
	"strings"
)

const markerTool = "nixbuilder-setup"

func beginMarker(name string) string { return "# BEGIN " + markerTool + " " + name }
func endMarker(name string) string   { return "# END " + markerTool + " " + name }

// block is where one managed block sits in a file, as line indexes.
type block struct {
	name       string
	begin, end int // indexes into the lines of the file; end is the END line
}

// markerLine recognises a BEGIN or END line of any managed block. Trailing
// white space (and the "\r" of a CRLF file) is ignored, nothing else is.
func markerLine(raw []byte) (kind, name string, ok bool) {
	s := strings.TrimRight(string(raw), " \t\r\n")
	for _, k := range []string{"BEGIN", "END"} {
		p := "# " + k + " " + markerTool + " "
		if strings.HasPrefix(s, p) {
			return k, strings.TrimSpace(s[len(p):]), true
		}
	}
	return "", "", false
}

// findBlocks returns every managed block in lines, or an error naming the
// line of a duplicated, nested, stray or unterminated marker.
func findBlocks(lines [][]byte) ([]block, error) {
	var out []block
	seen := map[string]int{}
	open := -1
	for i, raw := range lines {
		kind, name, ok := markerLine(raw)
		if !ok {
			continue
		}
		switch kind {
		case "BEGIN":
			if open >= 0 {
				return nil, fmt.Errorf("line %d: %q: a managed block starts inside the block %q begun on line %d", i+1, lineText(raw), out[open].name, out[open].begin+1)
			}
			if first, dup := seen[name]; dup {
				return nil, fmt.Errorf("line %d: %q: the managed block %q appears twice (first on line %d); remove one of them", i+1, lineText(raw), name, first+1)
			}
			seen[name] = i
			out = append(out, block{name: name, begin: i, end: -1})
			open = len(out) - 1
		case "END":
			if open < 0 || out[open].name != name {
				return nil, fmt.Errorf("line %d: %q: end of a managed block that was not begun", i+1, lineText(raw))
			}
			out[open].end = i
			open = -1
		}
	}
	if open >= 0 {
		b := out[open]
		return nil, fmt.Errorf("line %d: %q: the managed block %q has no %q line", b.begin+1, lineText(lines[b.begin]), b.name, endMarker(b.name))
	}
	return out, nil
}

func checkBlockName(name string) error {
	if name == "" || strings.ContainsAny(name, " \t\r\n#;") {
		return fmt.Errorf("managed block name %q: must be a non-empty word without white space, '#' or ';'", name)
	}
	return nil
}

// fileEOL is the line ending the file uses: that of its first line, "\n"
// for a file without any.
func fileEOL(data []byte) string {
	i := bytes.IndexByte(data, '\n')
	if i > 0 && data[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// renderBlock builds the block's lines with eol endings. The END line gets
// no ending when final is false.
func renderBlock(name string, body []byte, eol string, final bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(beginMarker(name) + eol)
	for _, raw := range splitLines(body) {
		if _, _, ok := markerLine(raw); ok {
			return nil, fmt.Errorf("managed block %q: the body contains a marker line %q", name, lineText(raw))
		}
		b.WriteString(lineText(raw) + eol)
	}
	b.WriteString(endMarker(name))
	if final {
		b.WriteString(eol)
	}
	return b.Bytes(), nil
}

// UpsertManagedBlock returns old with the managed block name holding body:
// the block is replaced where it is, or appended at the end of the file.
// Every byte outside the block is kept; body's lines get the file's line
// ending. Applying it twice gives the same bytes as applying it once, and
// RemoveManagedBlock undoes it exactly: when old does not end in a newline,
// the block is appended after a line break and its END line gets none, so
// that removal can take that line break out again.
func UpsertManagedBlock(old []byte, name string, body []byte) ([]byte, error) {
	if err := checkBlockName(name); err != nil {
		return nil, err
	}
	lines := splitLines(old)
	blocks, err := findBlocks(lines)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if b.name != name {
			continue
		}
		// The block keeps its own shape: the line ending of its BEGIN line
		// and whether its END line has one.
		eol := fileEOL(lines[b.begin])
		endRaw := lines[b.end]
		final := endRaw[len(endRaw)-1] == '\n'
		nb, err := renderBlock(name, body, eol, final)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		for _, l := range lines[:b.begin] {
			out.Write(l)
		}
		out.Write(nb)
		for _, l := range lines[b.end+1:] {
			out.Write(l)
		}
		return out.Bytes(), nil
	}
	eol := fileEOL(old)
	final := len(old) == 0 || old[len(old)-1] == '\n'
	nb, err := renderBlock(name, body, eol, final)
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, old...)
	if !final {
		out = append(out, eol...)
	}
	return append(out, nb...), nil
}

// RemoveManagedBlock returns old without the managed block name, undoing
// UpsertManagedBlock byte for byte. A file without the block is returned
// unchanged.
func RemoveManagedBlock(old []byte, name string) ([]byte, error) {
	if err := checkBlockName(name); err != nil {
		return nil, err
	}
	lines := splitLines(old)
	blocks, err := findBlocks(lines)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if b.name != name {
			continue
		}
		var out bytes.Buffer
		for _, l := range lines[:b.begin] {
			out.Write(l)
		}
		for _, l := range lines[b.end+1:] {
			out.Write(l)
		}
		res := out.Bytes()
		endRaw := lines[b.end]
		if b.end == len(lines)-1 && endRaw[len(endRaw)-1] != '\n' {
			// The block was appended to a file without a final newline
			// (UpsertManagedBlock added one before it, the same as the
			// BEGIN line's): take it out again.
			sep := []byte("\n")
			if bytes.HasSuffix(lines[b.begin], []byte("\r\n")) && bytes.HasSuffix(res, []byte("\r\n")) {
				sep = []byte("\r\n")
			}
			res = bytes.TrimSuffix(res, sep)
		}
		return res, nil
	}
	return old, nil
}

// ManagedBlock returns the body of the managed block name (without its
// marker lines, line endings normalised to "\n"), and whether it exists.
func ManagedBlock(old []byte, name string) (body []byte, found bool, err error) {
	if err := checkBlockName(name); err != nil {
		return nil, false, err
	}
	lines := splitLines(old)
	blocks, err := findBlocks(lines)
	if err != nil {
		return nil, false, err
	}
	for _, b := range blocks {
		if b.name != name {
			continue
		}
		var out bytes.Buffer
		for _, l := range lines[b.begin+1 : b.end] {
			out.WriteString(lineText(l) + "\n")
		}
		return out.Bytes(), true, nil
	}
	return nil, false, nil
}
