package sshkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ConfigQuery says how to ask OpenSSH what it will do for an alias.
type ConfigQuery struct {
	// Command runs ssh: {"ssh"} by default. Prefix it to run as someone
	// else, e.g. {"sudo", "-n", "-H", "-u", "alice", "ssh"}.
	Command []string
	// Args go before -G, e.g. {"-F", "/tmp/x/config"} in tests.
	Args []string
	// Alias is the host to resolve.
	Alias string
	// ReadFile reads the config files ssh names, to find which line set a
	// value; os.ReadFile by default. Steps pass a privileged reader when
	// ssh runs as root.
	ReadFile func(name string) ([]byte, error)
	// Dir is the working directory for ssh (relative -F paths).
	Dir string
}

// Setting is where one ssh_config option got its value.
type Setting struct {
	File string
	Line int
	Args []string
}

// ResolvedConfig is what `ssh -G` printed, and where each value came from.
type ResolvedConfig struct {
	// Values maps each lower-case option ssh -G printed to its values
	// (IdentityFile and other list options may appear several times).
	Values map[string][]string
	// Sources maps a lower-case option to every line, in the order OpenSSH
	// applied them, that set it in a block applying to the alias. OpenSSH
	// keeps the first value (IdentityFile accumulates).
	Sources map[string][]Setting
	// Files lists the config files OpenSSH read, in order.
	Files []string
}

// Get returns the first value of option (lower case), or "".
func (r *ResolvedConfig) Get(option string) string {
	if v := r.Values[option]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ConfigError is a config file OpenSSH rejects, with the file and line.
type ConfigError struct {
	File    string
	Line    int
	Message string // OpenSSH's words, e.g. "Bad configuration option: usekeychain"
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("OpenSSH rejects %s line %d: %s; every ssh command run with this config fails until that line is fixed", e.File, e.Line, e.Message)
	if strings.HasPrefix(e.Message, "Bad configuration option") {
		msg += " (an option only Apple's ssh knows, such as UseKeychain, can be kept by putting `IgnoreUnknown UseKeychain` above it)"
	}
	return msg
}

var configErrRe = regexp.MustCompile(`^(.+): line (\d+): (.+)$`)

// ResolveConfig runs `ssh -G -v <alias>` and reports the values OpenSSH
// will use, and which config line set each of them. ssh's own debug
// trace ("Reading configuration data …", "… line N: Applying options for
// …", "checking match for …", "Including file …") says which blocks
// applied; the files are then read to find the options inside them.
func ResolveConfig(ctx context.Context, q ConfigQuery) (*ResolvedConfig, error) {
	if q.Alias == "" {
		return nil, errors.New("ssh -G: no alias given")
	}
	argv := q.Command
	if len(argv) == 0 {
		argv = []string{"ssh"}
	}
	argv = append(append(append([]string(nil), argv...), q.Args...), "-G", "-vvv", "--", q.Alias)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = q.Dir
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr != nil {
		for _, l := range strings.Split(stderr.String(), "\n") {
			l = strings.TrimRight(l, "\r")
			if strings.HasPrefix(l, "debug") {
				continue
			}
			if m := configErrRe.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[2])
				return nil, &ConfigError{File: m[1], Line: n, Message: m[3]}
			}
		}
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), runErr, lastLines(stderr.String(), 5))
	}
	readFile := q.ReadFile
	if readFile == nil {
		readFile = os.ReadFile
	}
	if q.Dir != "" {
		inner := readFile
		readFile = func(name string) ([]byte, error) {
			if !strings.HasPrefix(name, "/") {
				name = q.Dir + "/" + name
			}
			return inner(name)
		}
	}
	r := &ResolvedConfig{Values: ParseG(stdout.Bytes())}
	r.Files, r.Sources = traceSources(stderr.Bytes(), readFile)
	return r, nil
}

func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(l, "debug") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "; ")
}

// ParseG parses `ssh -G` output ("option value" per line) into a map of
// lower-case option to values, in order.
func ParseG(out []byte) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimRight(l, "\r")
		k, v, _ := strings.Cut(l, " ")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		m[k] = append(m[k], v)
	}
	return m
}

// A trace event, from ssh's debug output, in the order ssh emitted it.
type traceEvent struct {
	kind    byte // 'r' read file, 'i' include, 'a' Host applied, 'm' match result
	file    string
	line    int
	target  string // include target
	matched bool
	parse   bool // include in an inactive block ("parse only")
}

var (
	readRe    = regexp.MustCompile(`^debug1: Reading configuration data (.+)$`)
	applyRe   = regexp.MustCompile(`^debug1: (.+) line (\d+): Applying options for `)
	includeRe = regexp.MustCompile(`^debug3: (.+) line (\d+): Including file (.+) depth \d+( \(parse only\))?$`)
	matchRe   = regexp.MustCompile(`^debug2: match (not )?found$`)
)

func parseTrace(stderr []byte) []traceEvent {
	var evs []traceEvent
	for _, l := range strings.Split(string(stderr), "\n") {
		l = strings.TrimRight(l, "\r")
		if m := readRe.FindStringSubmatch(l); m != nil {
			evs = append(evs, traceEvent{kind: 'r', file: m[1]})
		} else if m := applyRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[2])
			evs = append(evs, traceEvent{kind: 'a', file: m[1], line: n})
		} else if m := includeRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[2])
			evs = append(evs, traceEvent{kind: 'i', file: m[1], line: n, target: m[3], parse: m[4] != ""})
		} else if m := matchRe.FindStringSubmatch(l); m != nil {
			evs = append(evs, traceEvent{kind: 'm', matched: m[1] == ""})
		}
	}
	return evs
}

// traceSources replays OpenSSH's reading of its config files: it walks the
// files in the order ssh read them and uses the trace to decide, at each
// Host, Match and Include line, what ssh decided. The result maps each
// option to the lines that set it while their block applied.
func traceSources(stderr []byte, readFile func(string) ([]byte, error)) ([]string, map[string][]Setting) {
	w := &walker{evs: parseTrace(stderr), read: readFile, src: map[string][]Setting{}}
	for w.i < len(w.evs) {
		ev := w.evs[w.i]
		w.i++
		if ev.kind == 'r' {
			w.walk(ev.file, true)
		}
	}
	return w.files, w.src
}

type walker struct {
	evs   []traceEvent
	i     int
	read  func(string) ([]byte, error)
	src   map[string][]Setting
	files []string
}

func (w *walker) peek() (traceEvent, bool) {
	if w.i < len(w.evs) {
		return w.evs[w.i], true
	}
	return traceEvent{}, false
}

func (w *walker) walk(file string, active bool) {
	w.files = append(w.files, file)
	data, err := w.read(file)
	if err != nil {
		return // unattributable, but -G's values are still right
	}
	for n, raw := range strings.Split(string(data), "\n") {
		n++
		kw, args := configLine(raw)
		switch kw {
		case "":
		case "host":
			active = false
			if ev, ok := w.peek(); ok && ev.kind == 'a' && ev.file == file && ev.line == n {
				w.i++
				active = true
			}
		case "match":
			active = false
			if ev, ok := w.peek(); ok && ev.kind == 'm' {
				w.i++
				active = ev.matched
			}
		case "include":
			for {
				ev, ok := w.peek()
				if !ok || ev.kind != 'i' || ev.file != file || ev.line != n {
					break
				}
				w.i++
				if next, ok := w.peek(); ok && next.kind == 'r' {
					w.i++
				}
				w.walk(ev.target, active && !ev.parse)
			}
		default:
			if active {
				w.src[kw] = append(w.src[kw], Setting{File: file, Line: n, Args: args})
			}
		}
	}
}

// Override is an option OpenSSH resolves differently from our alias block.
type Override struct {
	Option string // lower case, as ssh -G prints it
	Want   string
	Got    string // all values, space-separated, for list options
	// File and Line name the config line that set Got; empty when the
	// value is OpenSSH's default or the line could not be found.
	File string
	Line int
}

func (o Override) String() string {
	s := fmt.Sprintf("%s is %q, want %q", o.Option, o.Got, o.Want)
	if o.File != "" {
		s += fmt.Sprintf(" (set by %s line %d)", o.File, o.Line)
	}
	return s
}

// Check compares r with the alias block c and returns every option OpenSSH
// resolves differently, with the line that overrides it. IdentityFile must
// be ours and only ours: with IdentitiesOnly, a key added by a `Host *`
// block would be offered first.
func (r *ResolvedConfig) Check(c AliasConfig) []Override {
	want := c.Want()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Override
	for _, k := range keys {
		w := want[k]
		// The same key file listed twice (our block in a user's config and
		// the alias file) is still only our key.
		got := slices.Compact(slices.Clone(r.Values[k]))
		if len(got) == 1 && sameValue(k, got[0], w) {
			continue
		}
		o := Override{Option: k, Want: w, Got: strings.Join(got, " ")}
		for _, s := range r.Sources[k] {
			// The first setting line whose value is not ours is the
			// culprit (for IdentityFile: the first foreign key).
			if len(s.Args) == 0 || !sameValue(k, s.Args[0], w) {
				o.File, o.Line = s.File, s.Line
				break
			}
		}
		out = append(out, o)
	}
	return out
}

// sameValue compares option values: yes/no flags case-insensitively (ssh
// accepts "Yes"), everything else exactly.
func sameValue(option, a, b string) bool {
	if option == "identitiesonly" {
		return strings.EqualFold(a, b)
	}
	return a == b
}
