package steps

import (
	"context"
	"slices"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Setup returns the setup steps in order.
func Setup(env *Env) []plan.Step {
	return []plan.Step{
		hostStep(env),
		rosettaStep(env),
		dockerStep(env),
		nixStep(env),
		keyStep(env),
		imageStep(env),
		containerStep(env),
		authorizedKeyStep(env),
		hostKeyStep(env),
		sshConfigStep(env),
		knownHostsStep(env),
		machinesStep(env),
		nixConfStep(env),
		daemonStep(env),
		remoteStoreStep(env),
		sanityStep(env),
	}
}

// StatusLine is one line of `status`.
type StatusLine struct {
	Component string
	OK        bool
	Text      string
}

// statusSteps are the steps status reports on: everything but the builds.
var statusSteps = []string{"docker", "nix", "key", "image", "container", "authorized-key", "host-key",
	"ssh-config", "known-hosts", "machines", "nix-conf", "daemon"}

// Status reports each component in one line, quickly: it runs the checks
// of every step but the remote ones, concurrently, and changes nothing.
func Status(ctx context.Context, env *Env) []StatusLine {
	all := Setup(env)
	sel, err := plan.Select(all, nil, skipAllBut(all, statusSteps))
	if err != nil {
		return []StatusLine{{Component: "status", Text: err.Error()}}
	}
	col := &collector{}
	plan.Run(ctx, sel, col, plan.Options{Mode: plan.Doctor})
	var out []StatusLine
	for _, s := range sel {
		r := col.results[s.ID]
		text := r.Detail
		if r.Warning != "" {
			text += " (warning: " + r.Warning + ")"
		}
		out = append(out, StatusLine{Component: s.ID, OK: r.Status.Good(), Text: text})
	}
	return out
}

func skipAllBut(all []plan.Step, keep []string) []string {
	var skip []string
	for _, s := range all {
		if !slices.Contains(keep, s.ID) {
			skip = append(skip, s.ID)
		}
	}
	return skip
}

// collector is a frontend that keeps each step's last result.
type collector struct{ results map[string]plan.Result }

func (c *collector) Event(ev plan.Event) {
	if ev.Type != plan.EventStep || ev.Status == plan.StatusChecking || ev.Status == plan.StatusApplying {
		return
	}
	if c.results == nil {
		c.results = map[string]plan.Result{}
	}
	var st plan.Status
	_ = st.UnmarshalText([]byte(ev.Status))
	c.results[ev.ID] = plan.Result{Status: st, Detail: ev.Detail, Hint: ev.Hint, Warning: ev.Warning}
}

func (c *collector) Confirm(context.Context, plan.StepInfo, []plan.Change) (plan.Decision, error) {
	return plan.No, plan.ErrNoConsent
}
