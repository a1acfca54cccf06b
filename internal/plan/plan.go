// Package plan is the step engine: an ordered list of steps, each a
// Check that never changes anything and an Apply that makes the Check pass.
// The engine runs them in one of four modes (setup, doctor, repair, plan)
// and reports what happens as events to a frontend; steps never print.
package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Status is the outcome of a Check.
type Status int

// The statuses a Check can return. Applied is only ever reported by the
// engine, for a step whose Check passed after its Apply.
const (
	OK Status = iota
	NeedsApply
	Blocked
	Failed
	Skipped
	Applied
)

var statusNames = [...]string{"ok", "needs-apply", "blocked", "failed", "skipped", "applied"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText makes a Status its JSON name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a Status from its JSON name.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown status %q", b)
}

// Good reports whether the status needs nothing more from anyone.
func (s Status) Good() bool { return s == OK || s == Applied || s == Skipped }

// ChangeKind names what a Change touches.
type ChangeKind string

// The kinds of change a step can announce.
const (
	ChangeFile      ChangeKind = "file"      // a file written, with a unified diff
	ChangeRemove    ChangeKind = "remove"    // a file removed
	ChangeCommand   ChangeKind = "command"   // a command run
	ChangeContainer ChangeKind = "container" // a container, image or volume created, replaced or removed
)

// Change is one thing Apply will do, shown to the user before it is done.
type Change struct {
	Kind    ChangeKind `json:"kind"`
	Summary string     `json:"summary"`           // one line, for lists
	Path    string     `json:"path,omitempty"`    // file changes
	Diff    string     `json:"diff,omitempty"`    // unified diff of a file change
	Command []string   `json:"command,omitempty"` // command changes, as exec'd
	Root    bool       `json:"root,omitempty"`    // done with root privileges
}

// Text renders the change for a terminal: the summary, then the diff or the
// command line indented.
func (c Change) Text() string {
	var b strings.Builder
	b.WriteString(c.Summary)
	if c.Root {
		b.WriteString(" (as root)")
	}
	b.WriteString("\n")
	if len(c.Command) > 0 {
		b.WriteString("    $ " + QuoteArgs(c.Command) + "\n")
	}
	if c.Diff != "" {
		for _, l := range strings.SplitAfter(strings.TrimRight(c.Diff, "\n"), "\n") {
			b.WriteString("    " + strings.TrimRight(l, "\n") + "\n")
		}
	}
	return b.String()
}

// QuoteArgs renders an argument list the way a user would type it, for
// display only: commands are always exec'd with the list itself.
func QuoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>*?()[]{}~#!") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// Result is what a Check found.
type Result struct {
	Status  Status   `json:"status"`
	Detail  string   `json:"detail,omitempty"`  // what was found, one line
	Hint    string   `json:"hint,omitempty"`    // what the user can do, a command where there is one
	Changes []Change `json:"changes,omitempty"` // for NeedsApply: what Apply would do
	Warning string   `json:"warning,omitempty"` // something that works but the user should know
}

// Okf returns an OK result with a formatted detail.
func Okf(format string, args ...any) Result {
	return Result{Status: OK, Detail: fmt.Sprintf(format, args...)}
}

// Skip returns a Skipped result: the step does not apply on this host.
func Skip(detail string) Result { return Result{Status: Skipped, Detail: detail} }

// Block returns a Blocked result: only the user can fix it.
func Block(detail, hint string) Result {
	return Result{Status: Blocked, Detail: detail, Hint: hint}
}

// Fail returns a Failed result.
func Fail(detail, hint string) Result {
	return Result{Status: Failed, Detail: detail, Hint: hint}
}

// Need returns a NeedsApply result with the changes Apply would make.
func Need(detail string, changes ...Change) Result {
	return Result{Status: NeedsApply, Detail: detail, Changes: changes}
}

// Step is one thing setup puts in place.
type Step struct {
	ID    string   // stable: used in --json, --only, tests and docs
	Title string   // short, for humans
	Needs []string // IDs of steps whose findings it reads: its Check waits for theirs
	// After lists steps whose changes make this step's earlier result
	// stale, without it reading their findings: its Check does not wait
	// for them in a concurrent pass, but runs again after they change.
	After []string
	// Check finds out whether the step is in place. It never changes
	// anything, and is safe to run concurrently with the checks of steps
	// that it does not need.
	Check func(ctx context.Context) Result
	// Apply makes Check pass. Nil for steps only the user can fix.
	Apply func(ctx context.Context) error
	// Quiet marks a step that runs only because a selected step needs
	// what its Check finds (--only, --skip): it is checked, never applied,
	// and not reported.
	Quiet bool
}

// Mode selects what the engine does with the steps.
type Mode string

// The engine's modes.
const (
	Setup  Mode = "setup"  // check, consent, apply, re-check
	Doctor Mode = "doctor" // check only, concurrently
	Repair Mode = "repair" // setup, limited to failing steps and their dependents
	Plan   Mode = "plan"   // check only, showing the changes
	// Uninstall runs removal steps like repair: each is applied when
	// something of ours is left.
	Uninstall Mode = "uninstall"
)

// Exit codes, a public contract.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitBlocked     = 3
	ExitInterrupted = 130
)

// MarshalChanges renders changes as JSON, for golden tests and debugging.
func MarshalChanges(cs []Change) string {
	b, _ := json.Marshal(cs)
	return string(b)
}
