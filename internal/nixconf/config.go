package nixconf

import (
	"bytes"
	"fmt"
	"strings"
)

// Config is one parsed nix.conf file. It keeps every line as written, so
// Bytes returns the input unchanged.
type Config struct {
	lines []confLine
}

type lineKind int

const (
	kindBlank   lineKind = iota // blank or comment only
	kindSetting                 // NAME = words…
	kindInclude                 // include FILE / !include FILE
)

type confLine struct {
	raw   []byte // the line including its "\n", if any
	num   int    // 1-based line number
	kind  lineKind
	words []string // words after stripping the comment
}

// Include is one include line of a nix.conf file.
type Include struct {
	// Path is the file named, as written (relative paths are relative to
	// the including file's directory).
	Path string
	// IgnoreMissing is true for "!include", which Nix skips silently when
	// the file does not exist.
	IgnoreMissing bool
	// Line is the 1-based line number of the include line.
	Line int
}

// SyntaxError is a line Nix would refuse, with its number and text.
type SyntaxError struct {
	Line int
	Text string
	Why  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d: %q: %s", e.Line, e.Text, e.Why)
}

// splitLines splits data after each "\n", keeping the terminators, so that
// joining the pieces gives data back. A final piece without "\n" is kept.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+1])
		data = data[i+1:]
	}
	return out
}

// lineText is a line without its "\n" and without a "\r" before it, for
// messages.
func lineText(raw []byte) string {
	s := strings.TrimSuffix(string(raw), "\n")
	return strings.TrimSuffix(s, "\r")
}

// confWords returns the words of a nix.conf line the way Nix sees them: the
// comment stripped, split on spaces, tabs and carriage returns.
func confWords(raw []byte) []string {
	s := string(raw)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

// Parse reads a nix.conf file. It refuses exactly the lines Nix refuses: a
// line that is not blank, a comment, "NAME = VALUE" or an include.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	for i, raw := range splitLines(data) {
		l := confLine{raw: raw, num: i + 1, words: confWords(raw)}
		switch w := l.words; {
		case len(w) == 0:
			l.kind = kindBlank
		case w[0] == "include" || w[0] == "!include":
			if len(w) != 2 {
				return nil, &SyntaxError{Line: l.num, Text: lineText(raw), Why: "an include line names exactly one file"}
			}
			l.kind = kindInclude
		case len(w) < 2 || w[1] != "=":
			return nil, &SyntaxError{Line: l.num, Text: lineText(raw), Why: `not "name = value" (the "=" needs white space around it), a comment or an include`}
		default:
			l.kind = kindSetting
		}
		c.lines = append(c.lines, l)
	}
	return c, nil
}

// Bytes returns the file, byte for byte as it was parsed.
func (c *Config) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range c.lines {
		b.Write(l.raw)
	}
	return b.Bytes()
}

// Get returns the value of the setting name in force at the end of this one
// file, without following includes. A later "name = …" replaces earlier
// values; "extra-name = …" appends its words (or is the whole value when
// name was never set). Words are joined by single spaces. Get reads the
// file, not Nix's interpretation of it: duplicate words stay, quotes are
// literal, and deprecated names are keys of their own.
func (c *Config) Get(name string) (value string, ok bool) {
	var words []string
	for _, l := range c.lines {
		if l.kind != kindSetting {
			continue
		}
		switch l.words[0] {
		case name:
			words = append([]string{}, l.words[2:]...)
			ok = true
		case "extra-" + name:
			words = append(words, l.words[2:]...)
			ok = true
		}
	}
	return strings.Join(words, " "), ok
}

// Includes lists the include lines in file order.
func (c *Config) Includes() []Include {
	var out []Include
	for _, l := range c.lines {
		if l.kind == kindInclude {
			out = append(out, Include{
				Path:          l.words[1],
				IgnoreMissing: l.words[0] == "!include",
				Line:          l.num,
			})
		}
	}
	return out
}
