package plan

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Frontend that keeps every event and answers prompts.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	answer  Decision
	err     error
	prompts []string
}

func (r *recorder) Event(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Confirm(_ context.Context, s StepInfo, _ []Change) (Decision, error) {
	r.prompts = append(r.prompts, s.ID)
	return r.answer, r.err
}

// results returns "id=status" for every step result event, in order.
func (r *recorder) results() []string {
	var out []string
	for _, ev := range r.events {
		if ev.Type == EventStep && ev.Status != StatusChecking && ev.Status != StatusApplying {
			out = append(out, ev.ID+"="+ev.Status)
		}
	}
	return out
}

func (r *recorder) last() Event { return r.events[len(r.events)-1] }

// fakeStep is a step whose state is a bool: in place or not.
type fakeStep struct {
	id      string
	needs   []string
	ok      atomic.Bool
	checks  atomic.Int32
	applies atomic.Int32
	// broken makes Apply "succeed" without putting anything in place.
	broken   bool
	applyErr error
	status   Status // when not OK/NeedsApply: returned as is
}

func (f *fakeStep) step() Step {
	return Step{ID: f.id, Title: strings.ToUpper(f.id), Needs: f.needs,
		Check: func(context.Context) Result {
			f.checks.Add(1)
			if f.status != OK {
				return Result{Status: f.status, Detail: "fixed status", Hint: "do the thing"}
			}
			if f.ok.Load() {
				return Okf("%s in place", f.id)
			}
			return Need(f.id+" missing", Change{Kind: ChangeFile, Summary: "create /x/" + f.id})
		},
		Apply: func(context.Context) error {
			f.applies.Add(1)
			if f.applyErr != nil {
				return f.applyErr
			}
			if !f.broken {
				f.ok.Store(true)
			}
			return nil
		}}
}

func mk(ids ...string) ([]*fakeStep, []Step) {
	var fs []*fakeStep
	var ss []Step
	for _, id := range ids {
		f := &fakeStep{id: id}
		if len(fs) > 0 {
			f.needs = []string{fs[len(fs)-1].id}
		}
		fs = append(fs, f)
		ss = append(ss, f.step())
	}
	return fs, ss
}

func TestSetupAppliesInOrderAndRechecks(t *testing.T) {
	fs, ss := mk("a", "b", "c")
	fs[0].ok.Store(true)
	rec := &recorder{}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup, AssumeYes: true})
	if sum.Exit != ExitOK {
		t.Fatalf("exit %d, want 0; events %+v", sum.Exit, rec.results())
	}
	if got, want := rec.results(), []string{"a=ok", "b=needs-apply", "b=applied", "c=needs-apply", "c=applied"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if fs[0].applies.Load() != 0 || fs[1].applies.Load() != 1 || fs[2].applies.Load() != 1 {
		t.Errorf("applies a=%d b=%d c=%d", fs[0].applies.Load(), fs[1].applies.Load(), fs[2].applies.Load())
	}
	if rec.last().Type != EventResult || *rec.last().Exit != 0 {
		t.Errorf("last event %+v, want result exit 0", rec.last())
	}
	if !slices.Equal(sum.Applied, []string{"b", "c"}) {
		t.Errorf("applied %v", sum.Applied)
	}
}

func TestHealthySetupChangesNothing(t *testing.T) {
	fs, ss := mk("a", "b", "c")
	for _, f := range fs {
		f.ok.Store(true)
	}
	rec := &recorder{}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup})
	if sum.Exit != ExitOK || len(sum.Applied) != 0 || len(rec.prompts) != 0 {
		t.Fatalf("exit %d applied %v prompts %v", sum.Exit, sum.Applied, rec.prompts)
	}
	for _, f := range fs {
		if n := f.checks.Load(); n != 1 {
			t.Errorf("%s checked %d times, want once", f.id, n)
		}
	}
}

func TestApplyThatDoesNotFixIsFailed(t *testing.T) {
	fs, ss := mk("a", "b")
	fs[0].broken = true
	rec := &recorder{}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup, AssumeYes: true})
	if sum.Exit != ExitFailed {
		t.Fatalf("exit %d, want 1", sum.Exit)
	}
	if r := sum.Results["a"]; r.Status != Failed || !strings.Contains(r.Detail, "check still fails") {
		t.Errorf("a = %+v, want Failed saying the check still fails", r)
	}
	// b needs a: it is not attempted.
	if fs[1].applies.Load() != 0 || sum.Results["b"].Status != Skipped {
		t.Errorf("b applied %d times, result %+v", fs[1].applies.Load(), sum.Results["b"])
	}
}

func TestApplyErrorIsFailedAndIndependentStepsGoOn(t *testing.T) {
	a := &fakeStep{id: "a", applyErr: errors.New("disk full")}
	b := &fakeStep{id: "b"} // does not need a
	rec := &recorder{}
	sum := Run(context.Background(), []Step{a.step(), b.step()}, rec, Options{Mode: Setup, AssumeYes: true})
	if sum.Exit != ExitFailed || sum.Results["a"].Detail != "disk full" {
		t.Fatalf("exit %d, a=%+v", sum.Exit, sum.Results["a"])
	}
	if sum.Results["b"].Status != Applied {
		t.Errorf("b = %+v, want applied", sum.Results["b"])
	}
}

func TestDeclineChangesNothingAndExits3(t *testing.T) {
	fs, ss := mk("a", "b")
	rec := &recorder{answer: No}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup})
	if sum.Exit != ExitBlocked {
		t.Fatalf("exit %d, want 3", sum.Exit)
	}
	if fs[0].applies.Load()+fs[1].applies.Load() != 0 {
		t.Error("declined but applied")
	}
	if !slices.Equal(rec.prompts, []string{"a"}) {
		t.Errorf("prompts %v, want only a", rec.prompts)
	}
}

func TestNoTerminalWithoutYesExits3(t *testing.T) {
	fs, ss := mk("a")
	rec := &recorder{err: ErrNoConsent}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup})
	if sum.Exit != ExitBlocked || fs[0].applies.Load() != 0 {
		t.Fatalf("exit %d applies %d", sum.Exit, fs[0].applies.Load())
	}
	if !strings.Contains(sum.Results["a"].Hint, "--yes") {
		t.Errorf("hint %q does not name --yes", sum.Results["a"].Hint)
	}
}

func TestYesAllAsksOnce(t *testing.T) {
	_, ss := mk("a", "b", "c")
	rec := &recorder{answer: YesAll}
	sum := Run(context.Background(), ss, rec, Options{Mode: Setup})
	if sum.Exit != 0 || len(rec.prompts) != 1 {
		t.Fatalf("exit %d prompts %v", sum.Exit, rec.prompts)
	}
}

func TestAuthorizeOnceBeforeFirstApply(t *testing.T) {
	fs, ss := mk("a", "b")
	fs[0].ok.Store(true)
	calls := 0
	sum := Run(context.Background(), append(ss, (&fakeStep{id: "c"}).step()), &recorder{}, Options{Mode: Setup, AssumeYes: true,
		Authorize: func(context.Context) error { calls++; return nil }})
	if sum.Exit != 0 || calls != 1 {
		t.Fatalf("exit %d authorize calls %d", sum.Exit, calls)
	}
	calls = 0
	healthy, hs := mk("x")
	healthy[0].ok.Store(true)
	Run(context.Background(), hs, &recorder{}, Options{Mode: Setup, Authorize: func(context.Context) error { calls++; return nil }})
	if calls != 0 {
		t.Errorf("healthy run asked for privileges %d times", calls)
	}
}

func TestDoctorChangesNothingAndReportsInOrder(t *testing.T) {
	fs, ss := mk("a", "b", "c")
	fs[1].ok.Store(true)
	fs[2].status = Blocked
	rec := &recorder{}
	sum := Run(context.Background(), ss, rec, Options{Mode: Doctor})
	if sum.Exit != ExitFailed {
		t.Fatalf("exit %d, want 1", sum.Exit)
	}
	if got, want := rec.results(), []string{"a=needs-apply", "b=ok", "c=blocked"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	for _, f := range fs {
		if f.applies.Load() != 0 {
			t.Errorf("doctor applied %s", f.id)
		}
	}
	if !slices.Equal(sum.Problems, []string{"a", "c"}) {
		t.Errorf("problems %v", sum.Problems)
	}
}

func TestDoctorBlockedOnlyExits3(t *testing.T) {
	a := &fakeStep{id: "a", status: Blocked}
	b := &fakeStep{id: "b"}
	b.ok.Store(true)
	if sum := Run(context.Background(), []Step{a.step(), b.step()}, &recorder{}, Options{Mode: Doctor}); sum.Exit != ExitBlocked {
		t.Fatalf("exit %d, want 3", sum.Exit)
	}
}

// Independent checks run concurrently: every check blocks until all have
// started, which can only finish if they run at the same time.
func TestDoctorRunsIndependentChecksConcurrently(t *testing.T) {
	const n = 6
	var started sync.WaitGroup
	started.Add(n)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var ss []Step
	for i := range n {
		ss = append(ss, Step{ID: string(rune('a' + i)), Title: "t", Check: func(ctx context.Context) Result {
			started.Done()
			select {
			case <-all:
				return Okf("fine")
			case <-time.After(10 * time.Second):
				return Fail("checks ran one after another", "")
			}
		}})
	}
	rec := &recorder{}
	sum := Run(context.Background(), ss, rec, Options{Mode: Doctor})
	if sum.Exit != 0 {
		t.Fatalf("exit %d: %v", sum.Exit, rec.results())
	}
}

func TestDoctorWaitsForNeeds(t *testing.T) {
	var aDone atomic.Bool
	ss := []Step{
		{ID: "a", Title: "A", Check: func(context.Context) Result {
			time.Sleep(50 * time.Millisecond)
			aDone.Store(true)
			return Okf("a")
		}},
		{ID: "b", Title: "B", Needs: []string{"a"}, Check: func(context.Context) Result {
			if !aDone.Load() {
				return Fail("ran before a", "")
			}
			return Okf("b")
		}},
	}
	if sum := Run(context.Background(), ss, &recorder{}, Options{Mode: Doctor}); sum.Exit != 0 {
		t.Fatalf("exit %d: %+v", sum.Exit, sum.Results)
	}
}

func TestRepairTouchesOnlyFailingAndDependents(t *testing.T) {
	// a ← b ← c, and d independent. b is broken: b and c are re-checked
	// and applied as needed; a and d are checked once and never applied.
	fs, ss := mk("a", "b", "c")
	d := &fakeStep{id: "d"}
	for _, f := range append(fs, d) {
		f.ok.Store(true)
	}
	fs[1].ok.Store(false)
	rec := &recorder{}
	sum := Run(context.Background(), append(ss, d.step()), rec, Options{Mode: Repair, AssumeYes: true})
	if sum.Exit != 0 {
		t.Fatalf("exit %d", sum.Exit)
	}
	if fs[0].checks.Load() != 1 || d.checks.Load() != 1 {
		t.Errorf("a checked %d, d checked %d; want once each", fs[0].checks.Load(), d.checks.Load())
	}
	if fs[1].applies.Load() != 1 || fs[0].applies.Load()+fs[2].applies.Load()+d.applies.Load() != 0 {
		t.Errorf("applies a=%d b=%d c=%d d=%d", fs[0].applies.Load(), fs[1].applies.Load(), fs[2].applies.Load(), d.applies.Load())
	}
	if fs[2].checks.Load() != 2 {
		t.Errorf("c (depends on b) checked %d times, want 2 (again after b changed)", fs[2].checks.Load())
	}
	if !slices.Equal(sum.Applied, []string{"b"}) {
		t.Errorf("applied %v", sum.Applied)
	}
}

func TestCancelStopsAtSafePoint(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var bApplied atomic.Bool
	ss := []Step{
		{ID: "a", Title: "A", Check: func(context.Context) Result { return Need("a") },
			Apply: func(context.Context) error { cancel(); return nil }},
		{ID: "b", Title: "B", Check: func(context.Context) Result { return Need("b") },
			Apply: func(context.Context) error { bApplied.Store(true); return nil }},
	}
	rec := &recorder{}
	sum := Run(ctx, ss, rec, Options{Mode: Setup, AssumeYes: true})
	if sum.Exit != ExitInterrupted {
		t.Fatalf("exit %d, want 130", sum.Exit)
	}
	if bApplied.Load() {
		t.Error("b applied after cancel")
	}
	if ev := rec.last(); ev.Type != EventResult || *ev.Exit != ExitInterrupted {
		t.Errorf("last event %+v", ev)
	}
}

func TestPanickingCheckIsFailed(t *testing.T) {
	ss := []Step{{ID: "a", Title: "A", Check: func(context.Context) Result { panic("boom") }}}
	sum := Run(context.Background(), ss, &recorder{}, Options{Mode: Doctor})
	if sum.Exit != ExitFailed || !strings.Contains(sum.Results["a"].Detail, "boom") {
		t.Fatalf("%+v", sum)
	}
}

func TestLogsCarryStepID(t *testing.T) {
	ss := []Step{{ID: "img", Title: "Image", Check: func(ctx context.Context) Result {
		Log(ctx, "Step 1/3")
		return Okf("ok")
	}}}
	rec := &recorder{}
	Run(context.Background(), ss, rec, Options{Mode: Doctor})
	found := false
	for _, ev := range rec.events {
		if ev.Type == EventLog && ev.ID == "img" && ev.Line == "Step 1/3" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log event in %+v", rec.events)
	}
}

func TestValidateAndSelect(t *testing.T) {
	_, ss := mk("a", "b", "c")
	if err := Validate(ss); err != nil {
		t.Fatal(err)
	}
	bad := []Step{{ID: "x", Needs: []string{"y"}, Check: ss[0].Check}}
	if err := Validate(bad); err == nil {
		t.Error("need on a later step accepted")
	}
	// c needs b: b comes along quietly, checked but not reported or applied.
	sel, err := Select(ss, []string{"c", "a"}, nil)
	if err != nil || len(sel) != 3 || sel[0].Quiet || !sel[1].Quiet || sel[1].ID != "b" || sel[2].Quiet {
		t.Errorf("Select only = %v, %v", sel, err)
	}
	sel, _ = Select(ss, []string{"a"}, nil)
	if len(sel) != 1 || sel[0].ID != "a" {
		t.Errorf("Select only a = %v", sel)
	}
	sel, _ = Select(ss, nil, []string{"b"})
	if len(sel) != 3 || !sel[1].Quiet {
		t.Errorf("Select skip = %v", sel)
	}
	if _, err := Select(ss, []string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), "a, b, c") {
		t.Errorf("unknown step error %v", err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	d := UnifiedDiff("/etc/nix/nix.conf", []byte("a = 1\n"), []byte("a = 1\nb = 2"), true)
	for _, want := range []string{"--- a/etc/nix/nix.conf", "+++ b/etc/nix/nix.conf", "+b = 2", `\ No newline at end of file`} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if d := UnifiedDiff("/x", nil, []byte("new\n"), false); !strings.Contains(d, "--- /dev/null") {
		t.Errorf("create diff:\n%s", d)
	}
}

// A step left out by --only still has its Check run when a chosen step
// needs its findings, but it is never applied nor reported.
func TestQuietNeedsAreCheckedNotApplied(t *testing.T) {
	fs, ss := mk("a", "b")
	sel, err := Select(ss, []string{"b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	sum := Run(context.Background(), sel, rec, Options{Mode: Setup, AssumeYes: true})
	if fs[0].checks.Load() == 0 {
		t.Error("the needed step was not checked")
	}
	if fs[0].applies.Load() != 0 {
		t.Error("a quiet step was applied")
	}
	for _, ev := range rec.events {
		if ev.ID == "a" {
			t.Errorf("quiet step reported: %+v", ev)
		}
	}
	if sum.Exit != 0 || slices.Contains(sum.Problems, "a") {
		t.Errorf("exit %d problems %v", sum.Exit, sum.Problems)
	}
}

// A step with After does not wait for those steps in doctor, but is
// checked again in repair when they change.
func TestAfterIsRecheckedButNotWaitedFor(t *testing.T) {
	release := make(chan struct{})
	var bStarted atomic.Bool
	aOK := atomic.Bool{}
	ss := []Step{
		{ID: "a", Title: "A", Check: func(context.Context) Result {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return Fail("b waited for a", "")
			}
			if aOK.Load() {
				return Okf("a")
			}
			return Need("a")
		}, Apply: func(context.Context) error { aOK.Store(true); return nil }},
		{ID: "b", Title: "B", After: []string{"a"}, Check: func(context.Context) Result {
			if bStarted.CompareAndSwap(false, true) {
				close(release) // a can only finish once b has started
			}
			return Okf("b")
		}},
	}
	checks := 0
	b := ss[1].Check
	ss[1].Check = func(ctx context.Context) Result { checks++; return b(ctx) }
	sum := Run(context.Background(), ss, &recorder{}, Options{Mode: Repair, AssumeYes: true})
	if sum.Exit != 0 {
		t.Fatalf("exit %d: %+v", sum.Exit, sum.Results)
	}
	if checks != 2 {
		t.Errorf("b checked %d times, want 2 (again after a changed)", checks)
	}
}

func TestAuthorizeFirst(t *testing.T) {
	fs, ss := mk("a")
	calls := 0
	checkedBefore := -1
	check := ss[0].Check
	ss[0].Check = func(ctx context.Context) Result {
		if checkedBefore < 0 {
			checkedBefore = calls
		}
		return check(ctx)
	}
	sum := Run(context.Background(), ss, &recorder{}, Options{Mode: Setup, AssumeYes: true, AuthorizeFirst: true,
		Authorize: func(context.Context) error { calls++; return nil }})
	if sum.Exit != 0 || calls != 1 || checkedBefore != 1 || fs[0].applies.Load() != 1 {
		t.Errorf("exit %d, authorize calls %d (before the first check: %d), applies %d; want one call, before the checks",
			sum.Exit, calls, checkedBefore, fs[0].applies.Load())
	}
	// A refusal does not stop a doctor run.
	sum = Run(context.Background(), ss, &recorder{}, Options{Mode: Doctor, AuthorizeFirst: true,
		Authorize: func(context.Context) error { return errors.New("no") }})
	if sum.Exit != ExitOK {
		t.Errorf("doctor after a refused authorization: exit %d", sum.Exit)
	}
}
