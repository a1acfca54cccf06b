package cli

import (
	"context"
	"errors"
	"os"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/steps"
	"github.com/nixbuilder/nixbuilder-setup/internal/tui"
)

func init() { runTUI = runInteractive }

// runInteractive runs the engine under the TUI. From doctor, the user can
// ask for a repair of what failed; it runs in the same screen's place.
func runInteractive(ctx context.Context, o *options, env *steps.Env, mode plan.Mode, list []plan.Step, stdio IO) (int, error) {
	opts := tui.Options{Mode: mode, Name: env.Name, Port: env.Port, Systems: env.Systems, LogDir: os.TempDir()}
	if x, ok := env.Run.(*host.Exec); ok && !x.IsRoot {
		opts.Authorize = x.AuthorizeCmd()
	}
	engineMode := mode
	for {
		exit, err := tui.Run(ctx, opts, stdio.In, stdio.Out, func(ctx context.Context, fe *tui.Frontend) int {
			return plan.Run(ctx, list, fe, plan.Options{Mode: engineMode, AssumeYes: o.yes, Authorize: fe.Authorize,
				AuthorizeFirst: opts.Authorize != nil}).Exit
		})
		if errors.Is(err, tui.ErrRepairRequested) {
			lock, lerr := host.AcquireLock(env.Paths.LockFile)
			if lerr != nil {
				return plan.ExitFailed, lerr
			}
			defer lock.Release()
			opts.Mode, engineMode = plan.Repair, plan.Repair
			continue
		}
		return exit, err
	}
}
