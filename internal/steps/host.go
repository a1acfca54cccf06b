package steps

import (
	"context"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

func hostStep(env *Env) plan.Step {
	return plan.Step{ID: "host", Title: "Host",
		Check: func(ctx context.Context) plan.Result {
			return plan.Okf("%s/%s", env.GOOS, env.GOARCH)
		}}
}
