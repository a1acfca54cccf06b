package cli_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nixbuilder/nixbuilder-setup/internal/cli"
	"github.com/nixbuilder/nixbuilder-setup/internal/host"
)

var update = flag.Bool("update", false, "rewrite the golden output inside testdata/script/*.txtar")

// TestMain lets the scripts run the real command line as a program, so that
// exit codes, stdout and stderr are exactly what a user or script sees.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"nixbuilder-setup": func() {
			os.Exit(cli.Main(os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
		},
	})
}

// TestScripts runs the CLI contract sessions in testdata/script. Each runs
// with NIXBUILDER_ROOT set to $WORK/machine, so that a script that forgets
// --root still never touches this machine's files.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           filepath.Join("testdata", "script"),
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("NIXBUILDER_ROOT", filepath.Join(env.WorkDir, "machine"))
			return nil
		},
		Condition: condition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":  cmdExitcode,
			"mode":      cmdMode,
			"ndjson":    cmdNDJSON,
			"normalize": cmdNormalize,
			"lock":      cmdLock,
			"unlock":    cmdUnlock,
		},
	})
}

// condition adds [privileged]: the tool can get root here (it is root, or
// sudo is installed), which is what the host step asks of a machine.
func condition(cond string) (bool, error) {
	if cond != "privileged" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if os.Geteuid() == 0 {
		return true, nil
	}
	_, err := exec.LookPath("sudo")
	return err == nil, nil
}

// cmdExitcode runs a program and checks its exact exit code:
//
//	exitcode N program [args...]
//
// stdout and stderr are kept for the stdout/stderr commands that follow.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: run %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdMode checks a file's permission bits:
//
//	mode FILE 0600
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		ts.Fatalf("mode: %q is not an octal mode", args[1])
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (uint64(got) == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// The fields each event type may have, from docs/json.md. A field outside
// these lists is a change to the public contract and fails the test.
var (
	eventFields = map[string][]string{
		"start":  {"type", "command", "steps"},
		"step":   {"type", "id", "title", "status", "detail", "hint", "warning", "changes"},
		"prompt": {"type", "id", "title", "detail", "changes", "answer"},
		"result": {"type", "command", "exit", "summary", "outcomes", "problems"},
		"log":    {"type", "id", "line"},
	}
	changeFields   = []string{"kind", "summary", "path", "diff", "command", "root"}
	changeKinds    = []string{"file", "remove", "command", "container"}
	resultStatuses = []string{"ok", "needs-apply", "applied", "blocked", "failed", "skipped"}
	commands       = []string{"setup", "doctor", "repair", "plan", "uninstall"}
	answers        = []string{"assumed", "yes", "all", "no"}
)

// jsonEvent is an event as a consumer of the stream decodes it.
type jsonEvent struct {
	Type    string `json:"type"`
	Command string `json:"command"`
	Steps   []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"steps"`
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Status   string            `json:"status"`
	Line     string            `json:"line"`
	Answer   string            `json:"answer"`
	Changes  []json.RawMessage `json:"changes"`
	Exit     *int              `json:"exit"`
	Summary  string            `json:"summary"`
	Outcomes []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"outcomes"`
	Problems []string `json:"problems"`
}

// cmdNDJSON checks an event stream against docs/json.md (see checkStream):
//
//	ndjson FILE EXIT   stdout of a --json run that exited EXIT
//	ndjson -log FILE   stderr of a --json run: log events only
func cmdNDJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ndjson FILE EXIT | ndjson -log FILE")
	}
	if args[0] == "-log" {
		ts.Check(checkLog(ts.ReadFile(args[1])))
		return
	}
	exit, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("ndjson: %q is not an exit code", args[1])
	}
	ts.Check(checkStream(ts.ReadFile(args[0]), exit))
}

// checkLog checks the stderr of a --json run: every line a log event.
func checkLog(data string) error {
	for i, line := range lines(data) {
		ev, err := decodeEvent(line)
		if err != nil {
			return fmt.Errorf("stderr line %d: %w", i+1, err)
		}
		if ev.Type != "log" || ev.ID == "" {
			return fmt.Errorf("stderr line %d: want a log event with an id, got %s", i+1, line)
		}
	}
	return nil
}

// checkStream checks the stdout of a --json run that exited wantExit.
// Every line is one JSON object with only documented fields; the first is
// start, the result is the last line and the only one, its exit is
// wantExit, its outcomes are the last result status of each step start
// listed (not-run when none), and its problems are the steps not in place.
func checkStream(data string, wantExit int) error {
	ls := lines(data)
	if len(ls) < 2 {
		return fmt.Errorf("want at least a start and a result line, got %d lines:\n%s", len(ls), data)
	}
	var start jsonEvent
	last := map[string]string{} // step ID → last result status
	for i, line := range ls {
		n := i + 1
		ev, err := decodeEvent(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		switch {
		case i == 0 && ev.Type != "start":
			return fmt.Errorf("line 1: want the start event first, got %s", line)
		case i == len(ls)-1 && ev.Type != "result":
			return fmt.Errorf("line %d: want the result event last, got %s", n, line)
		case i > 0 && ev.Type == "start":
			return fmt.Errorf("line %d: a second start event", n)
		case i < len(ls)-1 && ev.Type == "result":
			return fmt.Errorf("line %d: a result event before the last line", n)
		case ev.Type == "log":
			return fmt.Errorf("line %d: log events belong on stderr, not stdout", n)
		}
		switch ev.Type {
		case "start":
			start = ev
			if !slices.Contains(commands, ev.Command) || ev.Steps == nil {
				return fmt.Errorf("line %d: start needs a command in %v and steps: %s", n, commands, line)
			}
		case "step":
			if ev.ID == "" || ev.Title == "" {
				return fmt.Errorf("line %d: step needs id and title: %s", n, line)
			}
			if ev.Status != "checking" && ev.Status != "applying" {
				if !slices.Contains(resultStatuses, ev.Status) {
					return fmt.Errorf("line %d: unknown step status %q", n, ev.Status)
				}
				last[ev.ID] = ev.Status
			}
		case "prompt":
			if ev.ID == "" || !slices.Contains(answers, ev.Answer) {
				return fmt.Errorf("line %d: prompt needs id and an answer in %v: %s", n, answers, line)
			}
		case "result":
			if ev.Command != start.Command {
				return fmt.Errorf("line %d: result command %q, start said %q", n, ev.Command, start.Command)
			}
			if ev.Exit == nil || *ev.Exit != wantExit {
				return fmt.Errorf("line %d: result exit %s, the process exited %d", n, ptrString(ev.Exit), wantExit)
			}
			if ev.Summary == "" {
				return fmt.Errorf("line %d: result without a summary", n)
			}
			if len(ev.Outcomes) != len(start.Steps) {
				return fmt.Errorf("line %d: %d outcomes for %d steps", n, len(ev.Outcomes), len(start.Steps))
			}
			var problems []string
			for j, o := range ev.Outcomes {
				if o.ID != start.Steps[j].ID {
					return fmt.Errorf("line %d: outcome %d is %q, start listed %q", n, j, o.ID, start.Steps[j].ID)
				}
				want, ok := last[o.ID]
				if !ok {
					want = "not-run"
				}
				if o.Status != want {
					return fmt.Errorf("line %d: outcome of %s is %q, its last step event said %q", n, o.ID, o.Status, want)
				}
				if o.Status != "ok" && o.Status != "applied" && o.Status != "skipped" {
					problems = append(problems, o.ID)
				}
			}
			if !slices.Equal(ev.Problems, problems) {
				return fmt.Errorf("line %d: problems %q, want the steps not in place %q", n, ev.Problems, problems)
			}
		}
	}
	return nil
}

func ptrString(p *int) string {
	if p == nil {
		return "missing"
	}
	return strconv.Itoa(*p)
}

// decodeEvent parses one line strictly: an object with a known type and
// only that type's documented fields (and those of Change), none null.
func decodeEvent(line string) (jsonEvent, error) {
	var ev jsonEvent
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		return ev, fmt.Errorf("not a JSON object: %v: %s", err, line)
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		return ev, fmt.Errorf("a field has the wrong type: %v: %s", err, line)
	}
	allowed, ok := eventFields[ev.Type]
	if !ok {
		return ev, fmt.Errorf("unknown event type %q: %s", ev.Type, line)
	}
	for k, v := range fields {
		if !slices.Contains(allowed, k) {
			return ev, fmt.Errorf("field %q is not in the %s event's contract (docs/json.md)", k, ev.Type)
		}
		if string(v) == "null" {
			return ev, fmt.Errorf("field %q is null; absent fields are omitted", k)
		}
	}
	for _, raw := range ev.Changes {
		var c map[string]json.RawMessage
		if err := json.Unmarshal(raw, &c); err != nil {
			return ev, fmt.Errorf("a change is not an object: %s", raw)
		}
		for k := range c {
			if !slices.Contains(changeFields, k) {
				return ev, fmt.Errorf("change field %q is not in the contract", k)
			}
		}
		var kind, summary string
		_ = json.Unmarshal(c["kind"], &kind)
		_ = json.Unmarshal(c["summary"], &summary)
		if !slices.Contains(changeKinds, kind) || summary == "" {
			return ev, fmt.Errorf("a change needs a kind in %v and a summary: %s", changeKinds, raw)
		}
	}
	return ev, nil
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// fingerprint matches an SSH SHA256 key fingerprint, which differs for
// every generated key.
var fingerprint = regexp.MustCompile(`SHA256:[A-Za-z0-9+/]{43}`)

// cmdNormalize writes FILE to OUT with what differs between runs replaced:
// $WORK by the literal "$WORK", key fingerprints by SHA256:<fingerprint>.
//
//	normalize FILE OUT
func cmdNormalize(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: normalize FILE OUT")
	}
	s := ts.ReadFile(args[0])
	s = strings.ReplaceAll(s, ts.Getenv("WORK"), "$WORK")
	s = fingerprint.ReplaceAllString(s, "SHA256:<fingerprint>")
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(s), 0o644))
}

// Locks taken by scripts, released by unlock or when the script ends.
var (
	locksMu sync.Mutex
	locks   = map[string]*host.Lock{}
)

// cmdLock takes the run lock at FILE in the test process, as a run that is
// still going would hold it, until unlock FILE or the end of the script.
//
//	lock FILE
func cmdLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lock FILE")
	}
	path := ts.MkAbs(args[0])
	l, err := host.AcquireLock(path)
	ts.Check(err)
	locksMu.Lock()
	locks[path] = l
	locksMu.Unlock()
	ts.Defer(func() { release(path) })
}

// cmdUnlock releases a lock taken by lock.
//
//	unlock FILE
func cmdUnlock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unlock FILE")
	}
	if !release(ts.MkAbs(args[0])) {
		ts.Fatalf("unlock %s: not locked by this script", args[0])
	}
}

func release(path string) bool {
	locksMu.Lock()
	defer locksMu.Unlock()
	l, ok := locks[path]
	if ok {
		_ = l.Release()
		delete(locks, path)
	}
	return ok
}

// TestCheckStream shows the stream checker the scripts rely on can fail:
// a valid stream passes and each broken one is refused.
func TestCheckStream(t *testing.T) {
	good := []string{
		`{"type":"start","command":"doctor","steps":[{"id":"key","title":"Builder key"}]}`,
		`{"type":"step","id":"key","title":"Builder key","status":"needs-apply","changes":[{"kind":"file","summary":"create k","path":"k","root":true}]}`,
		`{"type":"result","command":"doctor","exit":1,"summary":"1 problem: key","outcomes":[{"id":"key","status":"needs-apply"}],"problems":["key"]}`,
	}
	join := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	if err := checkStream(join(good...), 1); err != nil {
		t.Fatalf("valid stream refused: %v", err)
	}
	bad := map[string]string{
		"not json":        join(good[0], `{"type":`, good[2]),
		"no start first":  join(good[1], good[2]),
		"no result last":  join(good[0], good[1]),
		"two results":     join(good[0], good[2], good[2]),
		"unknown type":    join(good[0], `{"type":"news"}`, good[2]),
		"unknown field":   join(good[0], `{"type":"step","id":"key","title":"Builder key","status":"needs-apply","extra":1}`, good[2]),
		"null field":      join(good[0], `{"type":"step","id":"key","title":"Builder key","status":"needs-apply","detail":null}`, good[2]),
		"wrong exit":      join(good[0], good[1], strings.Replace(good[2], `"exit":1`, `"exit":0`, 1)),
		"no exit":         join(good[0], good[1], strings.Replace(good[2], `"exit":1,`, ``, 1)),
		"wrong outcome":   join(good[0], `{"type":"step","id":"key","title":"Builder key","status":"ok"}`, good[2]),
		"wrong problems":  join(good[0], good[1], strings.Replace(good[2], `"problems":["key"]`, `"problems":["host"]`, 1)),
		"log on stdout":   join(good[0], `{"type":"log","id":"key","line":"x"}`, good[1], good[2]),
		"unknown status":  join(good[0], `{"type":"step","id":"key","title":"Builder key","status":"great"}`, good[2]),
		"bad change kind": join(good[0], `{"type":"step","id":"key","title":"Builder key","status":"needs-apply","changes":[{"kind":"magic","summary":"x"}]}`, good[2]),
		"bad answer":      join(good[0], good[1], `{"type":"prompt","id":"key","title":"Builder key","answer":"maybe"}`, good[2]),
	}
	for name, stream := range bad {
		if err := checkStream(stream, 1); err == nil {
			t.Errorf("%s: accepted:\n%s", name, stream)
		}
	}
	if err := checkLog(`{"type":"log","id":"image","line":"Step 1/9"}` + "\n"); err != nil {
		t.Errorf("valid log refused: %v", err)
	}
	if err := checkLog(good[1] + "\n"); err == nil {
		t.Errorf("a step event on stderr was accepted")
	}
}
