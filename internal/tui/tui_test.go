package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// scriptedSetup replays the events of a setup run that creates the key,
// the image and the container, pausing once mid-apply of the image (it
// sends to paused, then waits for resume).
func scriptedSetup(paused chan<- struct{}, resume <-chan struct{}) func(context.Context, *Frontend) int {
	return func(ctx context.Context, fe *Frontend) int {
		fs := standardFakes()
		var infos []plan.StepInfo
		for _, f := range fs {
			infos = append(infos, plan.StepInfo{ID: f.id, Title: f.title})
		}
		fe.Event(plan.Event{Type: plan.EventStart, Command: plan.Setup, Steps: infos})
		changed := map[string][]plan.Change{
			"key":       {{Kind: plan.ChangeFile, Summary: "create /etc/nix/nixbuilder_ed25519", Path: "/etc/nix/nixbuilder_ed25519", Root: true}},
			"image":     {{Kind: plan.ChangeContainer, Summary: "build image nixbuilder:3f2a9c1e"}},
			"container": {{Kind: plan.ChangeContainer, Summary: "create container nixbuilder"}},
		}
		var applied []string
		anyChange := false
		for _, f := range fs {
			step := func(status, detail string) {
				fe.Event(plan.Event{Type: plan.EventStep, ID: f.id, Title: f.title, Status: status, Detail: detail})
			}
			cs, ok := changed[f.id]
			if !ok {
				if anyChange {
					step(plan.StatusChecking, "")
				}
				step("ok", f.before.Detail)
				continue
			}
			anyChange = true
			step(plan.StatusChecking, "")
			fe.Event(plan.Event{Type: plan.EventStep, ID: f.id, Title: f.title, Status: "needs-apply", Detail: "missing", Changes: cs})
			fe.Event(plan.Event{Type: plan.EventPrompt, ID: f.id, Title: f.title, Changes: cs, Answer: "assumed"})
			step(plan.StatusApplying, "")
			if f.id == "image" {
				for i := 1; i <= 12; i++ {
					fe.Event(plan.Event{Type: plan.EventLog, ID: "image", Line: fmt.Sprintf("#%d [%d/12] RUN step %d of the builder image\r\n", i, i, i)})
				}
				paused <- struct{}{}
				<-resume
			}
			step("applied", f.after.Detail)
			applied = append(applied, f.id)
		}
		exit := 0
		var outcomes []plan.StepOutcome
		for _, f := range fs {
			st := "ok"
			if _, ok := changed[f.id]; ok {
				st = "applied"
			}
			outcomes = append(outcomes, plan.StepOutcome{ID: f.id, Status: st})
		}
		fe.Event(plan.Event{Type: plan.EventResult, Command: plan.Setup, Exit: &exit,
			Summary: "done: applied " + strings.Join(applied, ", "), Outcomes: outcomes})
		return exit
	}
}

func TestSuccessfulRun(t *testing.T) {
	paused, resume := make(chan struct{}), make(chan struct{})
	h := newHarness(t, testOptions(plan.Setup), scriptedSetup(paused, resume))
	<-paused
	t.Run("applying", func(t *testing.T) {
		s := h.screen()
		checkFits(t, s, 80, 24)
		for _, want := range []string{"applying Builder image…", "#12 [12/12]", "── log · image"} {
			if !strings.Contains(s, want) {
				t.Errorf("screen lacks %q", want)
			}
		}
		golden(t, s)
	})
	close(resume)
	m, exit := h.finish()
	if exit != 0 {
		t.Errorf("exit = %d, want 0", exit)
	}
	s := m.View()
	checkFits(t, s, 80, 24)
	for _, want := range []string{"done: applied key, image, container",
		"nix build --max-jobs 0 --system x86_64-linux nixpkgs#hello",
		"nixbuilder-setup uninstall", "127.0.0.1:2222"} {
		if !strings.Contains(s, want) {
			t.Errorf("final screen lacks %q", want)
		}
	}
	if m.logPath != "" {
		t.Errorf("a successful run wrote a log: %s", m.logPath)
	}
	golden(t, s)
}

func TestBlockedStepWithHint(t *testing.T) {
	fs := standardFakes()
	findFake(fs, "docker").before = plan.Block("cannot reach the Docker engine at unix:///var/run/docker.sock",
		"start Docker Desktop: open -a Docker")
	h := newHarness(t, testOptions(plan.Setup), engine(fs, plan.Setup, nil))
	m, exit := h.finish()
	if exit != plan.ExitBlocked {
		t.Errorf("exit = %d, want %d", exit, plan.ExitBlocked)
	}
	s := m.View()
	checkFits(t, s, 80, 24)
	for _, want := range []string{"blocked: cannot reach the Docker engine", "→ start Docker Desktop: open -a Docker"} {
		if !strings.Contains(s, want) {
			t.Errorf("final screen lacks %q", want)
		}
	}
	golden(t, s)
}

func TestFailureWithLog(t *testing.T) {
	fs := standardFakes()
	img := findFake(fs, "image")
	img.before = plan.Need("image nixbuilder:3f2a9c1e is missing",
		plan.Change{Kind: plan.ChangeContainer, Summary: "build image nixbuilder:3f2a9c1e"})
	img.apply = func(ctx context.Context) error {
		for i := 1; i <= 30; i++ {
			plan.Log(ctx, fmt.Sprintf("#%d building layer %d", i, i))
		}
		plan.Log(ctx, "\x1b[31mERROR: nix-daemon: not found\x1b[0m")
		return errors.New("docker build: exit status 1")
	}
	opts := testOptions(plan.Setup)
	var authorized atomic.Int32
	run := func(ctx context.Context, fe *Frontend) int {
		return plan.Run(ctx, planSteps(fs), fe, plan.Options{Mode: plan.Setup, AssumeYes: true,
			Authorize: func(ctx context.Context) error { authorized.Add(1); return fe.Authorize(ctx) }}).Exit
	}
	h := newHarness(t, opts, run)
	m, exit := h.finish()
	if exit != plan.ExitFailed {
		t.Errorf("exit = %d, want %d", exit, plan.ExitFailed)
	}
	if authorized.Load() != 1 {
		t.Errorf("Authorize called %d times, want 1", authorized.Load())
	}
	want := filepath.Join("logs", "nixbuilder-setup-setup-20250102-030405.log")
	if m.logPath != want {
		t.Fatalf("log path = %q (err %v), want %q", m.logPath, m.logErr, want)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 31 {
		t.Errorf("log file has %d lines, want all 31:\n%s", n, data)
	}
	if !strings.Contains(string(data), "[image] ERROR: nix-daemon: not found\n") {
		t.Errorf("log file lacks the cleaned error line:\n%s", data)
	}
	s := m.View()
	checkFits(t, s, 80, 24)
	for _, want := range []string{"failed: docker build: exit status 1", "Full log: " + want, "ERROR: nix-daemon: not found"} {
		if !strings.Contains(s, want) {
			t.Errorf("final screen lacks %q", want)
		}
	}
	golden(t, s)
}

// consentFakes need the key and nix.conf changed; nix.conf has a diff
// longer than the screen.
func consentFakes() []*fake {
	fs := standardFakes()
	findFake(fs, "key").before = plan.Need("no key at /etc/nix/nixbuilder_ed25519",
		plan.Change{Kind: plan.ChangeFile, Summary: "create /etc/nix/nixbuilder_ed25519 (ed25519, mode 0600)",
			Path: "/etc/nix/nixbuilder_ed25519", Root: true},
		plan.Change{Kind: plan.ChangeCommand, Summary: "give the key to root",
			Command: []string{"chown", "root:wheel", "/etc/nix/nixbuilder_ed25519"}, Root: true})
	findFake(fs, "nix-conf").before = plan.Need("builders is not set",
		plan.Change{Kind: plan.ChangeFile, Summary: "edit /etc/nix/nix.conf", Path: "/etc/nix/nix.conf",
			Diff: diffLines(30), Root: true})
	return fs
}

func TestConsentAccept(t *testing.T) {
	fs := consentFakes()
	var authorized atomic.Int32
	opts := testOptions(plan.Setup)
	opts.Authorize = exec.Command("true")
	h := newHarness(t, opts, engine(fs, plan.Setup, &authorized))

	s := h.waitScreen("Review: Builder SSH key")
	t.Run("key", func(t *testing.T) {
		checkFits(t, s, 80, 24)
		for _, want := range []string{"create /etc/nix/nixbuilder_ed25519", "(as root)", "$ chown root:wheel /etc/nix/nixbuilder_ed25519", "y apply this step"} {
			if !strings.Contains(s, want) {
				t.Errorf("review lacks %q", want)
			}
		}
		golden(t, s)
	})
	h.key("y")
	s = h.waitScreen("Review: nix.conf settings")
	t.Run("diff", func(t *testing.T) {
		checkFits(t, s, 80, 24)
		if !strings.Contains(s, "+extra-setting-00 = value") || strings.Contains(s, "-builders =") {
			t.Errorf("the diff should start on screen and continue below:\n%s", s)
		}
		golden(t, s)
	})
	h.key("pgdown")
	h.key("pgdown")
	s = h.screen()
	t.Run("scrolled", func(t *testing.T) {
		checkFits(t, s, 80, 24)
		if !strings.Contains(s, "-builders =") {
			t.Errorf("scrolling did not reach the end of the diff:\n%s", s)
		}
		golden(t, s)
	})
	h.key("a")
	m, exit := h.finish()
	if exit != 0 {
		t.Errorf("exit = %d, want 0", exit)
	}
	if authorized.Load() != 1 {
		t.Errorf("Authorize called %d times, want once", authorized.Load())
	}
	for _, id := range []string{"key", "nix-conf"} {
		if n := findFake(fs, id).applied.Load(); n != 1 {
			t.Errorf("%s applied %d times, want 1", id, n)
		}
	}
	s = m.View()
	checkFits(t, s, 80, 24)
	golden(t, s)
}

func TestConsentDecline(t *testing.T) {
	fs := consentFakes()
	var authorized atomic.Int32
	h := newHarness(t, testOptions(plan.Setup), engine(fs, plan.Setup, &authorized))
	h.waitScreen("Review: Builder SSH key")
	h.key("n")
	m, exit := h.finish()
	if exit != plan.ExitBlocked {
		t.Errorf("exit = %d, want %d", exit, plan.ExitBlocked)
	}
	for _, f := range fs {
		if f.applied.Load() != 0 {
			t.Errorf("%s was applied after a decline", f.id)
		}
	}
	if authorized.Load() != 0 {
		t.Error("sudo was asked for after a decline")
	}
	s := m.View()
	checkFits(t, s, 80, 24)
	for _, want := range []string{"declined", "nothing was changed", "Not reached:"} {
		if !strings.Contains(s, want) {
			t.Errorf("final screen lacks %q", want)
		}
	}
	golden(t, s)
}

func TestCancelMidApply(t *testing.T) {
	fs := standardFakes()
	img := findFake(fs, "image")
	img.before = plan.Need("missing", plan.Change{Kind: plan.ChangeContainer, Summary: "build image nixbuilder:3f2a9c1e"})
	sawCancel, release := make(chan struct{}), make(chan struct{})
	img.apply = func(ctx context.Context) error {
		plan.Log(ctx, "#1 [1/8] FROM debian:bookworm")
		<-ctx.Done()
		close(sawCancel)
		<-release
		return ctx.Err()
	}
	run := func(ctx context.Context, fe *Frontend) int {
		return plan.Run(ctx, planSteps(fs), fe, plan.Options{Mode: plan.Setup, AssumeYes: true}).Exit
	}
	h := newHarness(t, testOptions(plan.Setup), run)
	h.waitScreen("applying Builder image…")
	h.key("ctrl+c")
	select {
	case <-sawCancel:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine's context was not cancelled")
	}
	t.Run("stopping", func(t *testing.T) {
		s := h.waitScreen("stopping at a safe point")
		checkFits(t, s, 80, 24)
		golden(t, s)
	})
	h.key("q") // a second press changes nothing: the engine must finish
	close(release)
	m, exit := h.finish()
	if exit != plan.ExitInterrupted {
		t.Errorf("exit = %d, want %d", exit, plan.ExitInterrupted)
	}
	if h.runCtx.Err() == nil {
		t.Error("the run's context was not cancelled")
	}
	if n := findFake(fs, "container").applied.Load(); n != 0 {
		t.Errorf("a step after the interrupt was applied %d times", n)
	}
	s := m.View()
	checkFits(t, s, 80, 24)
	golden(t, s)
}

func TestResize(t *testing.T) {
	paused, resume := make(chan struct{}), make(chan struct{})
	h := newHarness(t, testOptions(plan.Setup), scriptedSetup(paused, resume))
	<-paused
	for _, size := range []struct{ w, h int }{{60, 16}, {100, 30}, {80, 24}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			h.tm.Send(tea.WindowSizeMsg{Width: size.w, Height: size.h})
			s := h.screen()
			checkFits(t, s, size.w, size.h)
			if !strings.Contains(s, "Builder image") {
				t.Errorf("the active step is not on screen:\n%s", s)
			}
			golden(t, s)
		})
	}
	close(resume)
	if _, exit := h.finish(); exit != 0 {
		t.Errorf("exit = %d, want 0", exit)
	}
}

func doctorFakes() []*fake {
	fs := standardFakes()
	findFake(fs, "machines").before = plan.Fail("/etc/nix/machines has no line for nixbuilder",
		"nixbuilder-setup repair")
	findFake(fs, "remote-store").before = plan.Fail("ssh: connect to host nixbuilder port 2222: Connection refused",
		"start the builder: docker start nixbuilder")
	return fs
}

func TestDoctorRepairKey(t *testing.T) {
	h := newHarness(t, testOptions(plan.Doctor), engine(doctorFakes(), plan.Doctor, nil))
	s := h.waitScreen("to repair the failing steps")
	t.Run("summary", func(t *testing.T) {
		checkFits(t, s, 80, 24)
		golden(t, s)
	})
	h.key("r")
	m, exit := h.finish()
	if exit != plan.ExitFailed {
		t.Errorf("exit = %d, want %d", exit, plan.ExitFailed)
	}
	if !m.repair {
		t.Error("r did not request a repair")
	}
}

// TestRunDoctorRepair drives Run itself, through its input and output.
func TestRunDoctorRepair(t *testing.T) {
	in, keys := io.Pipe()
	exitc := make(chan int, 1)
	errc := make(chan error, 1)
	opts := testOptions(plan.Doctor)
	opts.LogDir = t.TempDir()
	ran := make(chan struct{})
	go func() {
		exit, err := Run(context.Background(), opts, in, io.Discard, engine(doctorFakes(), plan.Doctor, nil))
		close(ran)
		_ = keys.Close()
		exitc <- exit
		errc <- err
	}()
	go func() {
		// Keep pressing r: a press that arrives before the summary is up
		// is ignored, as it should be.
		for {
			select {
			case <-ran:
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = keys.Write([]byte("r"))
			}
		}
	}()
	select {
	case exit := <-exitc:
		if exit != plan.ExitFailed {
			t.Errorf("exit = %d, want %d", exit, plan.ExitFailed)
		}
		if err := <-errc; !errors.Is(err, ErrRepairRequested) {
			t.Errorf("err = %v, want ErrRepairRequested", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestRunCancel cancels through Run's real wiring: q on the input stops
// the engine, which sees its context cancelled, and Run returns 130.
func TestRunCancel(t *testing.T) {
	in, keys := io.Pipe()
	fs := standardFakes()
	started := make(chan struct{})
	img := findFake(fs, "image")
	img.before = plan.Need("missing", plan.Change{Kind: plan.ChangeContainer, Summary: "build image"})
	img.apply = func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	go func() {
		<-started
		_, _ = keys.Write([]byte("q"))
	}()
	done := make(chan struct{})
	var exit int
	var err error
	go func() {
		defer close(done)
		opts := testOptions(plan.Setup)
		opts.LogDir = t.TempDir()
		exit, err = Run(context.Background(), opts, in, io.Discard, func(ctx context.Context, fe *Frontend) int {
			return plan.Run(ctx, planSteps(fs), fe, plan.Options{Mode: plan.Setup, AssumeYes: true}).Exit
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after q")
	}
	if exit != plan.ExitInterrupted || err != nil {
		t.Errorf("Run = %d, %v; want 130, nil", exit, err)
	}
}

// TestRunParentCancelled: a cancelled parent context (SIGTERM) stops the
// run as q does.
func TestRunParentCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	opts := testOptions(plan.Setup)
	opts.LogDir = t.TempDir()
	exit, err := Run(ctx, opts, strings.NewReader(""), io.Discard, func(ctx context.Context, fe *Frontend) int {
		cancel()
		<-ctx.Done()
		return plan.ExitInterrupted
	})
	if exit != plan.ExitInterrupted || err != nil {
		t.Errorf("Run = %d, %v; want 130, nil", exit, err)
	}
}

func TestAuthorizeFailure(t *testing.T) {
	fs := standardFakes()
	findFake(fs, "key").before = plan.Need("no key", plan.Change{Kind: plan.ChangeFile, Summary: "create key", Root: true})
	opts := testOptions(plan.Setup)
	opts.Authorize = exec.Command("false")
	run := func(ctx context.Context, fe *Frontend) int {
		return plan.Run(ctx, planSteps(fs), fe, plan.Options{Mode: plan.Setup, AssumeYes: true, Authorize: fe.Authorize}).Exit
	}
	h := newHarness(t, opts, run)
	m, exit := h.finish()
	if exit != plan.ExitBlocked {
		t.Errorf("exit = %d, want %d", exit, plan.ExitBlocked)
	}
	if n := findFake(fs, "key").applied.Load(); n != 0 {
		t.Errorf("key applied %d times without root", n)
	}
	if s := m.View(); !strings.Contains(s, "could not get root privileges") {
		t.Errorf("final screen does not say sudo failed:\n%s", s)
	}
}

func TestNoColor(t *testing.T) {
	st, _ := newStyles(io.Discard, true)
	if got := st.bad.Render("✗") + st.add.Render("+x"); got != "✗+x" {
		t.Errorf("NoColor rendered %q", got)
	}
	t.Setenv("NO_COLOR", "1")
	m := newModel(Options{}, func() {}, io.Discard)
	if got := m.st.good.Render("✓"); got != "✓" {
		t.Errorf("NO_COLOR rendered %q", got)
	}
}

func TestCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                     "plain",
		"10%\r50%\r100% done\r\n":   "100% done",
		"\x1b[1;31merror\x1b[0m\tx": "error    x",
		"bell\x07 and \x00nul":      "bell and nul",
	} {
		if got := cleanLine(in); got != want {
			t.Errorf("cleanLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDoctorManyProblems: more problems than fit on the screen are cut
// with a pointer to the full list, and q leaves the repair command on
// screen.
func TestDoctorManyProblems(t *testing.T) {
	fs := standardFakes()
	for _, f := range fs {
		f.before = plan.Fail(f.id+" is not in place: something is wrong with it",
			"nixbuilder-setup repair")
	}
	h := newHarness(t, testOptions(plan.Doctor), engine(fs, plan.Doctor, nil))
	s := h.waitScreen("to repair the failing steps")
	checkFits(t, s, 80, 24)
	h.key("q")
	m, exit := h.finish()
	if exit != plan.ExitFailed {
		t.Errorf("exit = %d, want %d", exit, plan.ExitFailed)
	}
	if m.repair {
		t.Error("q requested a repair")
	}
	s = m.View()
	checkFits(t, s, 80, 24)
	for _, want := range []string{"nixbuilder-setup doctor --plain", "Run nixbuilder-setup repair to fix them."} {
		if !strings.Contains(s, want) {
			t.Errorf("final screen lacks %q", want)
		}
	}
	golden(t, s)
}
