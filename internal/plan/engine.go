package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNoConsent is returned by a frontend that cannot ask for consent
// because there is no terminal to ask on.
var ErrNoConsent = errors.New("consent needed but there is no terminal to ask on; run again with --yes to apply the changes shown")

// Options tune a run.
type Options struct {
	Mode      Mode
	AssumeYes bool // --yes: never ask
	// Authorize is called once, before the first Apply, to get root
	// privileges ready (sudo -v); nil when none are needed.
	Authorize func(ctx context.Context) error
	// AuthorizeFirst calls Authorize before the checks too, because some
	// read root-only files; a refusal only leaves those checks blocked.
	AuthorizeFirst bool
	// Trace, when set, is told how long each Check and Apply took.
	Trace func(id, phase string, start time.Time, took time.Duration)
}

// Summary is the outcome of a run.
type Summary struct {
	Exit     int
	Results  map[string]Result // final result per step ID that was checked
	Problems []string          // step IDs not in place, in order
	Applied  []string          // step IDs applied, in order
}

// Validate checks that IDs are unique and Needs refer to earlier steps.
func Validate(steps []Step) error {
	seen := map[string]bool{}
	for _, s := range steps {
		if s.ID == "" || s.Check == nil {
			return fmt.Errorf("step %q: ID and Check are required", s.ID)
		}
		if seen[s.ID] {
			return fmt.Errorf("step %q defined twice", s.ID)
		}
		for _, n := range append(slices.Clone(s.Needs), s.After...) {
			if !seen[n] {
				return fmt.Errorf("step %q needs %q, which does not come before it", s.ID, n)
			}
		}
		seen[s.ID] = true
	}
	return nil
}

// Select keeps the steps named in only (all when empty) minus those in
// skip, in their original order. Unknown IDs are an error naming the known ones.
func Select(steps []Step, only, skip []string) ([]Step, error) {
	known := map[string]bool{}
	var ids []string
	for _, s := range steps {
		known[s.ID] = true
		ids = append(ids, s.ID)
	}
	for _, id := range append(slices.Clone(only), skip...) {
		if !known[id] {
			return nil, fmt.Errorf("unknown step %q (steps: %s)", id, strings.Join(ids, ", "))
		}
	}
	chosen := map[string]bool{}
	for _, s := range steps {
		chosen[s.ID] = (len(only) == 0 || slices.Contains(only, s.ID)) && !slices.Contains(skip, s.ID)
	}
	// The steps a chosen step needs are checked quietly for their
	// findings, however they were left out.
	needed := map[string]bool{}
	for i := len(steps) - 1; i >= 0; i-- {
		if chosen[steps[i].ID] || needed[steps[i].ID] {
			for _, n := range steps[i].Needs {
				needed[n] = true
			}
		}
	}
	var out []Step
	for _, s := range steps {
		switch {
		case chosen[s.ID]:
			out = append(out, s)
		case needed[s.ID]:
			s.Quiet = true
			out = append(out, s)
		}
	}
	return out, nil
}

// engine holds one run's state.
type engine struct {
	steps []Step
	fe    Frontend
	opts  Options
	mu    sync.Mutex // serialises calls into the frontend
	index map[string]int

	authorized bool
	approveAll bool
}

func (e *engine) emit(ev Event) {
	if ev.ID != "" && ev.Type != EventResult {
		if i, ok := e.index[ev.ID]; ok && e.steps[i].Quiet {
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fe.Event(ev)
}

func (e *engine) stepCtx(ctx context.Context, s Step) context.Context {
	return WithLog(ctx, func(line string) {
		e.emit(Event{Type: EventLog, ID: s.ID, Line: line})
	})
}

func resultEvent(s Step, r Result) Event {
	return Event{Type: EventStep, ID: s.ID, Title: s.Title, Status: r.Status.String(),
		Detail: r.Detail, Hint: r.Hint, Warning: r.Warning, Changes: r.Changes}
}

// check runs one Check, turning a panic into a Failed result so that one
// broken step cannot take the run down with it.
func (e *engine) check(ctx context.Context, s Step) (r Result) {
	if e.opts.Trace != nil {
		start := time.Now()
		defer func() { e.opts.Trace(s.ID, "check", start, time.Since(start)) }()
	}
	defer func() {
		if p := recover(); p != nil {
			r = Fail(fmt.Sprintf("internal error in check: %v", p), "please report this as a bug")
		}
	}()
	return s.Check(e.stepCtx(ctx, s))
}

// Run runs steps in the given mode, reporting to fe, and returns the
// summary. The last event is always a result event.
func Run(ctx context.Context, steps []Step, fe Frontend, opts Options) Summary {
	e := &engine{steps: steps, fe: fe, opts: opts, index: map[string]int{}}
	for i, s := range steps {
		e.index[s.ID] = i
	}
	var infos []StepInfo
	for _, s := range steps {
		if !s.Quiet {
			infos = append(infos, StepInfo{ID: s.ID, Title: s.Title})
		}
	}
	e.emit(Event{Type: EventStart, Command: opts.Mode, Steps: infos})
	if opts.AuthorizeFirst && opts.Authorize != nil && ctx.Err() == nil {
		e.authorized = opts.Authorize(ctx) == nil
	}

	var sum Summary
	switch opts.Mode {
	case Doctor, Plan:
		sum = e.checkAll(ctx, true)
	default:
		sum = e.converge(ctx)
	}
	e.finish(sum)
	return sum
}

// checkAll runs every Check concurrently, each once the steps it needs
// have finished, and reports the results in step order.
func (e *engine) checkAll(ctx context.Context, report bool) Summary {
	n := len(e.steps)
	results := make([]Result, n)
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	// Results are reported in order: result i goes out once 0..i are in.
	var orderMu sync.Mutex
	next := 0
	finished := make([]bool, n)
	flush := func() {
		for next < n && finished[next] {
			if report {
				e.emit(resultEvent(e.steps[next], results[next]))
			}
			next++
		}
	}
	var wg sync.WaitGroup
	for i, s := range e.steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, need := range s.Needs {
				if j, ok := e.index[need]; ok {
					<-done[j]
				}
			}
			if ctx.Err() != nil {
				results[i] = Result{Status: Failed, Detail: "interrupted"}
			} else {
				if report {
					e.emit(Event{Type: EventStep, ID: s.ID, Title: s.Title, Status: StatusChecking})
				}
				results[i] = e.check(ctx, s)
				if results[i].Status == NeedsApply && results[i].Hint == "" {
					results[i].Hint = "nixbuilder-setup repair"
				}
			}
			orderMu.Lock()
			finished[i] = true
			flush()
			orderMu.Unlock()
		}()
	}
	wg.Wait()

	sum := Summary{Results: map[string]Result{}}
	for i, s := range e.steps {
		sum.Results[s.ID] = results[i]
		if !results[i].Status.Good() && !s.Quiet {
			sum.Problems = append(sum.Problems, s.ID)
		}
	}
	sum.Exit = exitFor(ctx, sum.Results, e.steps)
	return sum
}

// exitFor maps results to the exit code: interrupted, failed (a step
// failed or is not in place), blocked (only the user can go on), or OK.
func exitFor(ctx context.Context, results map[string]Result, steps []Step) int {
	if ctx.Err() != nil {
		return ExitInterrupted
	}
	blocked := false
	for _, s := range steps {
		r, ok := results[s.ID]
		if !ok || s.Quiet {
			continue
		}
		switch r.Status {
		case Failed, NeedsApply:
			return ExitFailed
		case Blocked:
			blocked = true
		}
	}
	if blocked {
		return ExitBlocked
	}
	return ExitOK
}

// converge is setup and repair. A first pass checks everything
// concurrently (a healthy machine is done after it); then, in order, each
// step that is not in place, or that depends on a step changed in this
// run, is checked again and applied with consent. In setup every step after
// a change is checked again; repair re-checks only declared dependents.
func (e *engine) converge(ctx context.Context) Summary {
	first := e.checkAll(ctx, false)
	sum := Summary{Results: map[string]Result{}}
	if ctx.Err() != nil {
		sum.Results = first.Results
		sum.Exit = ExitInterrupted
		return sum
	}
	changed := map[string]bool{}   // steps applied in this run
	stopped := map[string]string{} // steps that ended not in place: ID → why
	anyChange := false
	stop := 0 // exit code that ends the run early (declined consent, interrupt)
	for _, s := range e.steps {
		if stop != 0 {
			break
		}
		if ctx.Err() != nil {
			stop = ExitInterrupted
			break
		}
		r := first.Results[s.ID]
		if s.Quiet {
			// Checked for its findings only; checked again when a step it
			// needs changed, so that those findings stay current.
			if e.dependsOnChanged(s, changed) {
				r = e.check(ctx, s)
			}
			sum.Results[s.ID] = r
			continue
		}
		if why := e.blockedBy(s, stopped); why != "" {
			r = Result{Status: Skipped, Detail: "not attempted: " + why}
			stopped[s.ID] = why
			sum.Results[s.ID] = r
			e.emit(resultEvent(s, r))
			continue
		}
		stale := !r.Status.Good() || e.dependsOnChanged(s, changed) || (e.opts.Mode == Setup && anyChange)
		if !stale {
			sum.Results[s.ID] = r
			e.emit(resultEvent(s, r))
			continue
		}
		e.emit(Event{Type: EventStep, ID: s.ID, Title: s.Title, Status: StatusChecking})
		r = e.check(ctx, s)
		if r.Status == NeedsApply && s.Apply != nil {
			var applied bool
			r, applied, stop = e.apply(ctx, s, r)
			if applied {
				changed[s.ID] = true
				anyChange = true
				sum.Applied = append(sum.Applied, s.ID)
			}
		} else if r.Status == NeedsApply {
			r.Status = Blocked
		}
		sum.Results[s.ID] = r
		e.emit(resultEvent(s, r))
		if !r.Status.Good() {
			stopped[s.ID] = fmt.Sprintf("%s is %s", s.ID, r.Status)
		}
	}
	for _, s := range e.steps {
		if r, ok := sum.Results[s.ID]; !s.Quiet && (!ok || !r.Status.Good()) {
			sum.Problems = append(sum.Problems, s.ID)
		}
	}
	if stop != 0 {
		sum.Exit = stop
	} else {
		sum.Exit = exitFor(ctx, sum.Results, e.steps)
	}
	return sum
}

// blockedBy says why s cannot run: a step it needs (directly or through
// another) ended not in place.
func (e *engine) blockedBy(s Step, stopped map[string]string) string {
	for _, n := range append(slices.Clone(s.Needs), s.After...) {
		if _, ok := stopped[n]; ok {
			return "needs " + n + ", which is not in place"
		}
	}
	return ""
}

func (e *engine) dependsOnChanged(s Step, changed map[string]bool) bool {
	for _, n := range append(slices.Clone(s.Needs), s.After...) {
		if changed[n] {
			return true
		}
		if j, ok := e.index[n]; ok && e.dependsOnChanged(e.steps[j], changed) {
			return true
		}
	}
	return false
}

// apply asks for consent, applies, and checks again. It returns the final
// result, whether Apply ran, and a non-zero exit code when the run must stop.
func (e *engine) apply(ctx context.Context, s Step, r Result) (Result, bool, int) {
	info := StepInfo{ID: s.ID, Title: s.Title}
	e.emit(resultEvent(s, r))
	answer := "assumed"
	if !e.opts.AssumeYes && !e.approveAll {
		e.mu.Lock()
		d, err := e.fe.Confirm(ctx, info, r.Changes)
		e.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return r, false, ExitInterrupted
			}
			e.emit(Event{Type: EventPrompt, ID: s.ID, Title: s.Title, Detail: r.Detail, Changes: r.Changes, Answer: "no"})
			r.Status = Blocked
			r.Hint = err.Error()
			return r, false, ExitBlocked
		}
		answer = d.String()
		if d == No {
			e.emit(Event{Type: EventPrompt, ID: s.ID, Title: s.Title, Detail: r.Detail, Changes: r.Changes, Answer: answer})
			r.Status = Blocked
			r.Detail = "declined: " + r.Detail
			r.Hint = "nothing was changed; run again and accept to apply"
			return r, false, ExitBlocked
		}
		if d == YesAll {
			e.approveAll = true
		}
	}
	e.emit(Event{Type: EventPrompt, ID: s.ID, Title: s.Title, Detail: r.Detail, Changes: r.Changes, Answer: answer})
	if !e.authorized && e.opts.Authorize != nil {
		if err := e.opts.Authorize(ctx); err != nil {
			if ctx.Err() != nil {
				return r, false, ExitInterrupted
			}
			return Result{Status: Blocked, Detail: "could not get root privileges: " + err.Error(),
				Hint: "run again from a terminal where you can use sudo"}, false, ExitBlocked
		}
		e.authorized = true
	}
	if ctx.Err() != nil {
		return r, false, ExitInterrupted
	}
	e.emit(Event{Type: EventStep, ID: s.ID, Title: s.Title, Status: StatusApplying})
	if err := e.runApply(ctx, s); err != nil {
		if ctx.Err() != nil {
			return Result{Status: Failed, Detail: "interrupted while applying: " + err.Error()}, true, ExitInterrupted
		}
		return Result{Status: Failed, Detail: err.Error(), Hint: r.Hint}, true, 0
	}
	after := e.check(ctx, s)
	switch after.Status {
	case OK:
		after.Status = Applied
	case NeedsApply:
		after = Result{Status: Failed, Detail: "applied, but the check still fails: " + after.Detail,
			Hint: after.Hint, Warning: after.Warning}
	}
	if after.Warning == "" {
		after.Warning = r.Warning
	}
	return after, true, 0
}

func (e *engine) runApply(ctx context.Context, s Step) (err error) {
	if e.opts.Trace != nil {
		start := time.Now()
		defer func() { e.opts.Trace(s.ID, "apply", start, time.Since(start)) }()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in apply: %v", p)
		}
	}()
	return s.Apply(e.stepCtx(ctx, s))
}

func (e *engine) finish(sum Summary) {
	outcomes := make([]StepOutcome, 0, len(e.steps))
	for _, s := range e.steps {
		if s.Quiet {
			continue
		}
		if r, ok := sum.Results[s.ID]; ok {
			outcomes = append(outcomes, StepOutcome{ID: s.ID, Status: r.Status.String()})
		} else {
			outcomes = append(outcomes, StepOutcome{ID: s.ID, Status: "not-run"})
		}
	}
	exit := sum.Exit
	e.emit(Event{Type: EventResult, Command: e.opts.Mode, Exit: &exit,
		Summary: summaryLine(e.opts.Mode, sum), Outcomes: outcomes, Problems: sum.Problems})
}

func summaryLine(m Mode, sum Summary) string {
	switch sum.Exit {
	case ExitInterrupted:
		return "interrupted; no file was left half-written — run again to continue"
	case ExitOK:
		if len(sum.Applied) > 0 {
			return fmt.Sprintf("done: applied %s", strings.Join(sum.Applied, ", "))
		}
		if m == Plan {
			return "nothing to change"
		}
		return "everything is in place"
	}
	word := "problems"
	if len(sum.Problems) == 1 {
		word = "problem"
	}
	s := fmt.Sprintf("%d %s: %s", len(sum.Problems), word, strings.Join(sum.Problems, ", "))
	if m == Doctor || m == Plan {
		s += " — run `nixbuilder-setup repair` to fix"
	}
	return s
}
