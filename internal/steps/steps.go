package steps

import (
	"context"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Setup returns the setup steps in order.
func Setup(env *Env) []plan.Step {
	return []plan.Step{
		hostStep(env),
	}
}

// Uninstall returns the steps that remove what setup added.
func Uninstall(env *Env) []plan.Step {
	return nil
}

// StatusLine is one line of `status`.
type StatusLine struct {
	Component string
	OK        bool
	Text      string
}

// Status reports each component in one line, quickly: no builds.
func Status(ctx context.Context, env *Env) []StatusLine {
	return nil
}
