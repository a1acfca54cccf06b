package steps

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// fakeRunner is the host.Runner of step tests: it records every command
// and answers from a table keyed by the joined argument list. Programs in
// real run for real (the nix binary, for the tests that use it); anything
// else fails the test, so a step can run only what a test expects.
type fakeRunner struct {
	t       *testing.T
	mu      sync.Mutex
	calls   []host.Cmd
	answers map[string]fakeAnswer
	real    map[string]bool
	// hook, when set, is called after a command was answered (to flip
	// the fake machine's state once something is installed).
	hook func(c host.Cmd)
}

type fakeAnswer struct {
	out string
	err error
}

func newFakeRunner(t *testing.T) *fakeRunner {
	return &fakeRunner{t: t, answers: map[string]fakeAnswer{}, real: map[string]bool{}}
}

func (f *fakeRunner) answer(argv string, out string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[argv] = fakeAnswer{out: out, err: err}
}

func (f *fakeRunner) Run(ctx context.Context, c host.Cmd) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	a, ok := f.answers[strings.Join(c.Args, " ")]
	realProg := len(c.Args) > 0 && f.real[c.Args[0]]
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		defer hook(c)
	}
	if ok {
		return []byte(a.out), a.err
	}
	if realProg {
		return (&host.Exec{IsRoot: os.Geteuid() == 0}).Run(ctx, c)
	}
	f.t.Errorf("unexpected command %q (root %v)", c.Args, c.Root)
	return nil, &host.CmdError{Args: c.Args, Exit: -1, Err: exec.ErrNotFound}
}

// commands returns the argument lists run so far.
func (f *fakeRunner) commands() []host.Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// countingFiles is host.LocalFiles that records every change it makes,
// so that a test can prove a check wrote nothing.
type countingFiles struct {
	host.LocalFiles
	mu      sync.Mutex
	changes []string
}

func (c *countingFiles) note(s string) {
	c.mu.Lock()
	c.changes = append(c.changes, s)
	c.mu.Unlock()
}

func (c *countingFiles) WriteFile(path string, data []byte, opt host.WriteOptions) error {
	c.note("write " + path)
	return c.LocalFiles.WriteFile(path, data, opt)
}

func (c *countingFiles) Remove(path string) error {
	c.note("remove " + path)
	return c.LocalFiles.Remove(path)
}

func (c *countingFiles) MkdirAll(path string, perm fs.FileMode) error {
	c.note("mkdir " + path)
	return c.LocalFiles.MkdirAll(path, perm)
}

func (c *countingFiles) written() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.changes)
}

func (c *countingFiles) reset() {
	c.mu.Lock()
	c.changes = nil
	c.mu.Unlock()
}

// testMachine is a machine re-rooted into a temporary directory.
type testMachine struct {
	t     *testing.T
	env   *Env
	run   *fakeRunner
	files *countingFiles
}

// newMachine returns an Env for a machine of goos rooted in t.TempDir(),
// with no environment variables, a fake runner and counting files.
func newMachine(t *testing.T, goos string) *testMachine {
	t.Helper()
	root := t.TempDir()
	home := "/home/user"
	arch := "amd64"
	if goos == "darwin" {
		home = "/Users/user"
		arch = "arm64"
	}
	paths := host.NewPaths(root, goos, func(string) string { return "" }, home)
	for _, d := range []string{paths.EtcNix, paths.SSHConfigDir, paths.RootHome, paths.UserHome} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := newFakeRunner(t)
	files := &countingFiles{}
	env := &Env{
		Config: DefaultConfig(),
		Paths:  paths,
		Run:    run,
		Files:  files,
		GOOS:   goos,
		GOARCH: arch,
		Nix:    "nix",
		SSH:    "ssh",
		Facts:  &Facts{},
	}
	return &testMachine{t: t, env: env, run: run, files: files}
}

// path returns p (an absolute path on the machine) under the test root.
func (m *testMachine) path(p string) string { return filepath.Join(m.env.Paths.Root, p) }

// write puts a file on the machine, creating its directory.
func (m *testMachine) write(path string, data string, mode fs.FileMode) {
	m.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		m.t.Fatal(err)
	}
}

func (m *testMachine) read(path string) string {
	m.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		m.t.Fatal(err)
	}
	return string(b)
}

// step returns the setup step id of the machine.
func (m *testMachine) step(id string) plan.Step {
	m.t.Helper()
	for _, s := range Setup(m.env) {
		if s.ID == id {
			return s
		}
	}
	m.t.Fatalf("no step %q", id)
	return plan.Step{}
}

// check runs the Check of step id.
func (m *testMachine) check(id string) plan.Result {
	m.t.Helper()
	return m.step(id).Check(context.Background())
}

// apply runs the Apply of step id.
func (m *testMachine) apply(id string) error {
	m.t.Helper()
	return m.step(id).Apply(context.Background())
}

// runSteps drives the steps named through the engine, answering every
// prompt with yes, and returns the summary and the events.
func (m *testMachine) runSteps(mode plan.Mode, ids ...string) (plan.Summary, *recorder) {
	m.t.Helper()
	all, err := plan.Select(Setup(m.env), ids, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	// The tests set the facts of the steps they leave out themselves.
	var sel []plan.Step
	for _, s := range all {
		if !s.Quiet {
			sel = append(sel, s)
		}
	}
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum := plan.Run(ctx, sel, rec, plan.Options{Mode: mode})
	return sum, rec
}

// noWrites fails the test when the files layer changed anything.
func (m *testMachine) noWrites() {
	m.t.Helper()
	if w := m.files.written(); len(w) > 0 {
		m.t.Errorf("wrote although nothing needed changing: %q", w)
	}
}

// recorder is a frontend that keeps the events and says yes to every
// prompt.
type recorder struct {
	mu       sync.Mutex
	events   []plan.Event
	confirms []string
}

func (r *recorder) Event(ev plan.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) Confirm(_ context.Context, s plan.StepInfo, _ []plan.Change) (plan.Decision, error) {
	r.mu.Lock()
	r.confirms = append(r.confirms, s.ID)
	r.mu.Unlock()
	return plan.Yes, nil
}

// fileID is what changes when a file is rewritten.
type fileID struct {
	ino   uint64
	mtime time.Time
	mode  fs.FileMode
}

func statID(t *testing.T, path string) fileID {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	id := fileID{mtime: fi.ModTime(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id
}

// snapshot records the identity of every file under dir.
func snapshot(t *testing.T, dir string) map[string]fileID {
	t.Helper()
	out := map[string]fileID{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out[p] = statID(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]fileID) {
	t.Helper()
	for p, a := range after {
		b, ok := before[p]
		if !ok {
			t.Errorf("%s was created", p)
		} else if a != b {
			t.Errorf("%s was rewritten (%+v → %+v)", p, b, a)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		}
	}
}

// newHostKey returns a fresh ed25519 public key and its signer.
func newHostKey(t *testing.T) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey(), s
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s %q does not contain %q", what, s, sub)
	}
}
