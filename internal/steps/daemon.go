package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixversion"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// daemonWait bounds how long Apply waits for a restarted daemon to answer.
var daemonWait = 60 * time.Second

func daemonStep(env *Env) plan.Step {
	return plan.Step{ID: "daemon", Title: "Nix daemon", Needs: []string{"nix", "nix-conf"},
		Check: func(ctx context.Context) plan.Result {
			_, inst, blocked := nixInfo(env)
			if blocked != nil {
				return *blocked
			}
			switch inst.Kind {
			case nixversion.KindSingleUser:
				return plan.Skip("single-user Nix: no daemon; every nix command reads nix.conf itself")
			case nixversion.KindNixDarwin, nixversion.KindNixOS:
				return plan.Skip(inst.Kind.String() + " restarts the daemon when you switch to a new configuration")
			}
			restart := restartCommand(env, inst)
			change := plan.Change{Kind: plan.ChangeCommand, Summary: "restart the Nix daemon so it reads nix.conf", Command: restart, Root: true}
			pid, started, err := daemonProcess(ctx, env, inst)
			if err != nil {
				r := plan.Need("the Nix daemon is not running: "+err.Error(), change)
				return r
			}
			files, err := nixversion.StatConfFiles([]string{env.Paths.NixConf(), env.Paths.NixCustomConf()})
			if err != nil {
				return plan.Fail("read nix.conf times: "+err.Error(), "")
			}
			fr := nixversion.CheckFreshness(started, files, nixversion.DefaultSlack)
			if fr.Stale {
				return plan.Need(fmt.Sprintf("the daemon (pid %d) started before the last change to %s: %s", pid, fr.Newest.Path, fr.Detail), change)
			}
			return plan.Okf("running (pid %d) since %s, with the current nix.conf", pid, started.Local().Format("2006-01-02 15:04:05"))
		},
		Apply: func(ctx context.Context) error {
			info, inst, blocked := nixInfo(env)
			if blocked != nil {
				return fmt.Errorf("%s", blocked.Detail)
			}
			if _, err := env.Run.Run(ctx, host.Cmd{Args: restartCommand(env, inst), Root: true}); err != nil {
				return fmt.Errorf("restart the Nix daemon: %w", err)
			}
			return waitForDaemon(ctx, env, info)
		}}
}

// waitForDaemon polls the daemon until it answers or daemonWait passes.
func waitForDaemon(ctx context.Context, env *Env, info nixversion.Info) error {
	ctx, cancel := context.WithTimeout(ctx, daemonWait)
	defer cancel()
	args := append([]string{env.Nix}, info.StoreInfoArgs("daemon")...)
	var last error
	for {
		if _, last = env.Run.Run(ctx, host.Cmd{Args: args}); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Nix daemon did not answer within %s after the restart: %w", daemonWait, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
