package tui

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// pkgDir is the package directory: tests run in temporary directories
// (failed runs write their log to the relative LogDir "logs"), goldens
// live here.
var pkgDir string

func TestMain(m *testing.M) {
	// Goldens are plain text: no colour, whatever the environment.
	lipgloss.SetColorProfile(termenv.Ascii)
	var err error
	if pkgDir, err = os.Getwd(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// snapMsg asks the program for its current screen. Messages are handled in
// order, so a snapshot taken after an engine call returned shows its effect.
type snapMsg struct{ ch chan string }

// snapModel wraps the model to answer snapMsg; everything else goes through.
type snapModel struct{ *model }

func (s snapModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if sm, ok := msg.(snapMsg); ok {
		sm.ch <- s.model.View()
		return s, nil
	}
	_, cmd := s.model.Update(msg)
	return s, cmd
}

// harness runs the model in a teatest program at 80×24 with colour off
// and a fixed spinner and clock, and the engine function in a goroutine
// exactly as Run does.
type harness struct {
	t       *testing.T
	tm      *teatest.TestModel
	exitc   <-chan int
	runCtx  context.Context
	stopped chan struct{}
}

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testOptions(mode plan.Mode) Options {
	return Options{Mode: mode, Name: "nixbuilder", Port: 2222,
		Systems: []string{"x86_64-linux", "aarch64-linux"}, NoColor: true, LogDir: "logs"}
}

func newHarness(t *testing.T, opts Options, run func(context.Context, *Frontend) int) *harness {
	t.Helper()
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := newModel(opts, cancel, io.Discard)
	m.static = true
	m.now = func() time.Time { return fixedNow }
	tm := teatest.NewTestModel(t, snapModel{m}, teatest.WithInitialTermSize(80, 24))
	h := &harness{t: t, tm: tm, runCtx: ctx, stopped: make(chan struct{})}
	t.Cleanup(func() {
		// A failed test must not leave the program or engine running.
		select {
		case <-h.stopped:
		default:
			cancel()
			tm.GetProgram().Kill()
		}
	})
	fe := &Frontend{send: tm.Send, done: h.stopped}
	h.exitc = start(ctx, fe, run)
	return h
}

// screen is the program's current screen.
func (h *harness) screen() string {
	h.t.Helper()
	ch := make(chan string, 1)
	h.tm.Send(snapMsg{ch})
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		h.t.Fatal("no screen from the program within 5s")
		return ""
	}
}

// waitScreen waits until the screen contains want and returns it.
func (h *harness) waitScreen(want string) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		if s = h.screen(); strings.Contains(s, want) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("screen never showed %q; last screen:\n%s", want, s)
	return ""
}

func (h *harness) key(k string) {
	switch k {
	case "ctrl+c":
		h.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	case "pgdown":
		h.tm.Send(tea.KeyMsg{Type: tea.KeyPgDown})
	default:
		h.tm.Type(k)
	}
}

// finish waits for the program to end and returns its final model and
// the engine's exit code.
func (h *harness) finish() (*model, int) {
	h.t.Helper()
	fm := h.tm.FinalModel(h.t, teatest.WithFinalTimeout(10*time.Second))
	close(h.stopped)
	select {
	case exit := <-h.exitc:
		return fm.(snapModel).model, exit
	case <-time.After(5 * time.Second):
		h.t.Fatal("the engine did not return")
		return nil, 0
	}
}

// golden compares a screen with testdata/<test name>.golden; -update
// (the flag of teatest's golden package) rewrites it. The path is
// absolute because tests run in a temporary directory.
func golden(t *testing.T, screen string) {
	t.Helper()
	path := filepath.Join(pkgDir, "testdata", t.Name()+".golden")
	got := screen + "\n"
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the tests with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s (-update to accept)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// checkFits asserts the screen fits w×h.
func checkFits(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) > h {
		t.Errorf("screen has %d lines, more than %d", len(lines), h)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, n, w, l)
		}
	}
}

// fake is one step of a fake engine: Check reports before until Apply
// ran, then after.
type fake struct {
	id, title string
	needs     []string
	before    plan.Result
	after     plan.Result
	apply     func(ctx context.Context) error
	applied   atomic.Int32
}

// standardFakes are the real step IDs, all in place.
func standardFakes() []*fake {
	specs := []struct {
		id, title, detail string
		needs             []string
	}{
		{"host", "Host", "macOS 14.5 on arm64, sudo available", nil},
		{"rosetta", "Rosetta 2", "installed", []string{"host"}},
		{"docker", "Docker engine", "Docker Desktop 4.30, linux/arm64", nil},
		{"nix", "Nix", "Nix 2.24.9 (upstream installer), daemon running", nil},
		{"key", "Builder SSH key", "/etc/nix/nixbuilder_ed25519, root 0600", nil},
		{"image", "Builder image", "nixbuilder:3f2a9c1e", []string{"docker"}},
		{"container", "Builder container", "running, 127.0.0.1:2222", []string{"image"}},
		{"authorized-key", "Authorized key", "holds our key", []string{"container", "key"}},
		{"host-key", "Pinned host key", "matches the container", []string{"container"}},
		{"ssh-config", "SSH alias", "/etc/ssh/ssh_config.d/100-nixbuilder.conf", nil},
		{"known-hosts", "Known hosts", "root and user trust the pinned key", []string{"host-key"}},
		{"machines", "Machines file", "/etc/nix/machines lists nixbuilder", []string{"key", "host-key"}},
		{"nix-conf", "nix.conf settings", "builders = @/etc/nix/machines", []string{"nix"}},
		{"daemon", "Nix daemon", "loaded the current nix.conf", []string{"nix-conf"}},
		{"remote-store", "Remote store", "ssh-ng://root@nixbuilder answers", []string{"machines", "ssh-config", "known-hosts", "daemon", "authorized-key"}},
		{"sanity", "Sanity build", "x86_64-linux and aarch64-linux built on the builder", []string{"remote-store"}},
	}
	var fs []*fake
	for _, s := range specs {
		fs = append(fs, &fake{id: s.id, title: s.title, needs: s.needs,
			before: plan.Okf("%s", s.detail), after: plan.Okf("%s", s.detail)})
	}
	return fs
}

func findFake(fs []*fake, id string) *fake {
	for _, f := range fs {
		if f.id == id {
			return f
		}
	}
	panic("no fake step " + id)
}

func planSteps(fs []*fake) []plan.Step {
	var steps []plan.Step
	for _, f := range fs {
		steps = append(steps, plan.Step{
			ID: f.id, Title: f.title, Needs: f.needs,
			Check: func(context.Context) plan.Result {
				if f.applied.Load() > 0 {
					return f.after
				}
				return f.before
			},
			Apply: func(ctx context.Context) error {
				f.applied.Add(1)
				if f.apply != nil {
					return f.apply(ctx)
				}
				return nil
			},
		})
	}
	return steps
}

// engine runs the real engine over the fake steps, with the Frontend's
// Authorize wired in as the lead wires it.
func engine(fs []*fake, mode plan.Mode, authorized *atomic.Int32) func(context.Context, *Frontend) int {
	return func(ctx context.Context, fe *Frontend) int {
		opts := plan.Options{Mode: mode, Authorize: func(ctx context.Context) error {
			if authorized != nil {
				authorized.Add(1)
			}
			return fe.Authorize(ctx)
		}}
		return plan.Run(ctx, planSteps(fs), fe, opts).Exit
	}
}

func diffLines(n int) string {
	var b strings.Builder
	b.WriteString("--- /etc/nix/nix.conf\n+++ /etc/nix/nix.conf (new)\n@@ -1,3 +1,6 @@\n")
	b.WriteString(" build-users-group = nixbld\n")
	for i := range n {
		fmt.Fprintf(&b, "+extra-setting-%02d = value\n", i)
	}
	b.WriteString("-builders =\n")
	return b.String()
}
