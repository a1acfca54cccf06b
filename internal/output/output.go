// Package output holds the non-interactive frontends of the engine: the
// plain log (for pipes and CI) and JSON (NDJSON, a public contract). Both
// render the same events the TUI does.
package output

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// JSON writes every event as one JSON object per line on Out, except log
// lines, which go to Err (also as JSON) so that Out stays small and
// parseable. It never asks for consent: scripts pass --yes.
type JSON struct {
	Out, Err io.Writer
	mu       sync.Mutex
}

// Event writes ev.
func (j *JSON) Event(ev plan.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	w := j.Out
	if ev.Type == plan.EventLog && j.Err != nil {
		w = j.Err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"type":"log","line":%q}`, "cannot encode event: "+err.Error()))
	}
	w.Write(append(b, '\n'))
}

// Confirm refuses: JSON mode is for scripts, which say --yes.
func (j *JSON) Confirm(context.Context, plan.StepInfo, []plan.Change) (plan.Decision, error) {
	return plan.No, plan.ErrNoConsent
}

// Plain writes one line per step result (status word, title, detail), the
// hint indented below, and the changes of steps that need them. It asks for
// consent on In when In is a terminal.
type Plain struct {
	Out   io.Writer
	Err   io.Writer // log lines; Out when nil
	Color bool
	// In is where answers come from; nil or not a terminal means no prompts.
	In          io.Reader
	Interactive bool
	// Verbose shows log lines (image build output); otherwise only the
	// last lines of a failing step's log are shown.
	Verbose bool

	mode   plan.Mode
	shown  string // step whose changes Confirm already showed
	logs   map[string][]string
	reader *bufio.Reader
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

func (p *Plain) paint(code, s string) string {
	if !p.Color {
		return s
	}
	return code + s + ansiReset
}

// word is the fixed-width status word of a step result.
func (p *Plain) word(status string) string {
	var w, c string
	switch status {
	case "ok":
		w, c = "ok", ansiGreen
	case "applied":
		w, c = "applied", ansiGreen
	case "needs-apply":
		w, c = "change", ansiYellow
		if p.mode == plan.Doctor {
			w = "PROBLEM"
		}
	case "blocked":
		w, c = "BLOCKED", ansiYellow
	case "failed":
		w, c = "FAILED", ansiRed
	case "skipped":
		w, c = "skip", ansiDim
	default:
		w, c = status, ""
	}
	return p.paint(c, fmt.Sprintf("%-8s", w))
}

// Event renders ev.
func (p *Plain) Event(ev plan.Event) {
	if p.logs == nil {
		p.logs = map[string][]string{}
	}
	switch ev.Type {
	case plan.EventStart:
		p.mode = ev.Command
	case plan.EventLog:
		p.logs[ev.ID] = append(p.logs[ev.ID], ev.Line)
		if p.Verbose {
			w := p.Err
			if w == nil {
				w = p.Out
			}
			fmt.Fprintf(w, "%s %s\n", p.paint(ansiDim, "  "+ev.ID+" |"), ev.Line)
		}
	case plan.EventStep:
		switch ev.Status {
		case plan.StatusChecking:
			return
		case plan.StatusApplying:
			fmt.Fprintf(p.Out, "%s %-22s %s\n", p.paint(ansiCyan, fmt.Sprintf("%-8s", "apply")), ev.Title, "…")
			return
		}
		// In setup a needs-apply result is followed by a prompt and the
		// final result; show the changes then, not twice.
		if ev.Status == "needs-apply" && (p.mode == plan.Setup || p.mode == plan.Repair || p.mode == plan.Uninstall) {
			return
		}
		p.result(ev)
	case plan.EventPrompt:
		if ev.Answer != "no" && p.shown != ev.ID {
			fmt.Fprintf(p.Out, "%s %-22s %s\n", p.paint(ansiYellow, fmt.Sprintf("%-8s", "change")), ev.Title, orCount(ev.Detail, ev.Changes))
			p.changes(ev.Changes)
		}
	case plan.EventResult:
		exit := 0
		if ev.Exit != nil {
			exit = *ev.Exit
		}
		c := ansiGreen
		if exit != 0 {
			c = ansiRed
		}
		fmt.Fprintf(p.Out, "\n%s\n", p.paint(ansiBold+c, ev.Summary))
	}
}

// orCount is what a change line says: what was found, else how many
// changes follow.
func orCount(detail string, cs []plan.Change) string {
	if detail != "" {
		return detail
	}
	return changeCount(cs)
}

func changeCount(cs []plan.Change) string {
	if len(cs) == 1 {
		return "1 change"
	}
	return fmt.Sprintf("%d changes", len(cs))
}

func (p *Plain) result(ev plan.Event) {
	detail := ev.Detail
	fmt.Fprintf(p.Out, "%s %-22s %s\n", p.word(ev.Status), ev.Title, detail)
	if ev.Warning != "" {
		fmt.Fprintf(p.Out, "%s%s\n", strings.Repeat(" ", 9), p.paint(ansiYellow, "warning: "+ev.Warning))
	}
	if ev.Status == "needs-apply" || ev.Status == "blocked" || ev.Status == "failed" {
		if ev.Hint != "" {
			fmt.Fprintf(p.Out, "%s%s\n", strings.Repeat(" ", 9), p.paint(ansiBold, "fix: "+ev.Hint))
		}
		if ev.Status == "needs-apply" && p.mode == plan.Plan {
			p.changes(ev.Changes)
		}
	}
	if ev.Status == "failed" && !p.Verbose {
		if lines := p.logs[ev.ID]; len(lines) > 0 {
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			for _, l := range lines {
				fmt.Fprintf(p.Out, "%s%s\n", strings.Repeat(" ", 11), p.paint(ansiDim, l))
			}
		}
	}
}

func (p *Plain) changes(cs []plan.Change) {
	for _, c := range cs {
		for _, l := range strings.Split(strings.TrimRight(c.Text(), "\n"), "\n") {
			color := ""
			t := strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(t, "+++") || strings.HasPrefix(t, "---"):
				color = ansiBold
			case strings.HasPrefix(t, "+"):
				color = ansiGreen
			case strings.HasPrefix(t, "-"):
				color = ansiRed
			case strings.HasPrefix(t, "@@"):
				color = ansiCyan
			}
			fmt.Fprintf(p.Out, "%s%s\n", strings.Repeat(" ", 9), p.paint(color, l))
		}
	}
}

// Confirm shows the changes and asks on In.
func (p *Plain) Confirm(ctx context.Context, step plan.StepInfo, changes []plan.Change) (plan.Decision, error) {
	if !p.Interactive || p.In == nil {
		return plan.No, plan.ErrNoConsent
	}
	fmt.Fprintf(p.Out, "%s %-22s %s\n", p.paint(ansiYellow, fmt.Sprintf("%-8s", "change")), step.Title, changeCount(changes))
	p.changes(changes)
	p.shown = step.ID
	if p.reader == nil {
		p.reader = bufio.NewReader(p.In)
	}
	for {
		fmt.Fprintf(p.Out, "Apply %s? [y]es, [a]ll remaining, [N]o: ", step.ID)
		type answer struct {
			s   string
			err error
		}
		ch := make(chan answer, 1)
		go func() {
			s, err := p.reader.ReadString('\n')
			ch <- answer{s, err}
		}()
		var a answer
		select {
		case <-ctx.Done():
			fmt.Fprintln(p.Out)
			return plan.No, ctx.Err()
		case a = <-ch:
		}
		if a.err != nil && a.s == "" {
			fmt.Fprintln(p.Out)
			return plan.No, nil
		}
		switch strings.ToLower(strings.TrimSpace(a.s)) {
		case "y", "yes":
			return plan.Yes, nil
		case "a", "all":
			return plan.YesAll, nil
		case "", "n", "no":
			return plan.No, nil
		}
	}
}
