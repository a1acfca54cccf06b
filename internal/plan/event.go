package plan

import "context"

// EventType names an event in the stream every frontend renders.
type EventType string

// The event types. The JSON output is these events, one per line.
const (
	EventStart  EventType = "start"  // the run begins: command and steps
	EventStep   EventType = "step"   // a step started a phase or has a result
	EventLog    EventType = "log"    // a line of output from a step (image build, sanity build)
	EventPrompt EventType = "prompt" // consent was asked for a step's changes, with the answer
	EventResult EventType = "result" // the run is over: the last event
)

// Step event statuses that are not results: a phase has started.
const (
	StatusChecking = "checking"
	StatusApplying = "applying"
)

// StepInfo names a step.
type StepInfo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// StepOutcome is one step's final status, for the result event.
type StepOutcome struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Event is one thing that happened in a run. Which fields are set depends
// on Type; docs/json.md is the contract.
type Event struct {
	Type EventType `json:"type"`

	// start and result
	Command Mode       `json:"command,omitempty"`
	Steps   []StepInfo `json:"steps,omitempty"` // start: the steps that will run, in order

	// step, log, prompt
	ID    string `json:"id,omitempty"`
	Title string `json:"title,omitempty"`

	// step: "checking", "applying", or a result status (Status.String())
	Status  string   `json:"status,omitempty"`
	Detail  string   `json:"detail,omitempty"`
	Hint    string   `json:"hint,omitempty"`
	Warning string   `json:"warning,omitempty"`
	Changes []Change `json:"changes,omitempty"` // step (needs-apply) and prompt

	// log
	Line string `json:"line,omitempty"`

	// prompt: "yes", "all", "no", or "assumed" (--yes)
	Answer string `json:"answer,omitempty"`

	// result
	Exit     *int          `json:"exit,omitempty"`
	Summary  string        `json:"summary,omitempty"`
	Outcomes []StepOutcome `json:"outcomes,omitempty"`
	Problems []string      `json:"problems,omitempty"` // IDs of steps not in place
}

// Decision is the user's answer to a consent prompt.
type Decision int

// The answers to a consent prompt.
const (
	No     Decision = iota // change nothing; stop
	Yes                    // apply this step
	YesAll                 // apply this step and every later one without asking
)

func (d Decision) String() string {
	switch d {
	case Yes:
		return "yes"
	case YesAll:
		return "all"
	}
	return "no"
}

// Frontend renders events and asks for consent. The engine calls it from
// one goroutine at a time.
type Frontend interface {
	Event(Event)
	// Confirm asks whether to apply a step's changes. A frontend that
	// cannot ask (no terminal) returns ErrNoConsent.
	Confirm(ctx context.Context, step StepInfo, changes []Change) (Decision, error)
}

type logKey struct{}

// Log sends a line of output from the step running under ctx to the
// frontend. Outside a step it does nothing.
func Log(ctx context.Context, line string) {
	if f, ok := ctx.Value(logKey{}).(func(string)); ok {
		f(line)
	}
}

// LogFunc returns the line logger of the step running under ctx, for code
// that streams output (an image build). It is never nil.
func LogFunc(ctx context.Context) func(string) {
	if f, ok := ctx.Value(logKey{}).(func(string)); ok {
		return f
	}
	return func(string) {}
}

// WithLog returns a context whose steps log through f; for tests of a
// single step outside the engine.
func WithLog(ctx context.Context, f func(string)) context.Context {
	return context.WithValue(ctx, logKey{}, f)
}
