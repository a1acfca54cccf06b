package steps

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixversion"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Fact keys written by the nix step.
const (
	factNixInfo    = "nix.info"    // nixversion.Info
	factNixInstall = "nix.install" // nixversion.Install
)

func nixStep(env *Env) plan.Step {
	return plan.Step{ID: "nix", Title: "Nix",
		Check: func(ctx context.Context) plan.Result {
			out, err := env.Run.Run(ctx, host.Cmd{Args: []string{env.Nix, "--version"}})
			if err != nil {
				if errors.Is(err, exec.ErrNotFound) {
					return plan.Block("nix is not installed (not on PATH)",
						"install Nix with the multi-user installer, open a new terminal, and run again")
				}
				return plan.Fail("`nix --version` failed: "+err.Error(), "check your Nix installation")
			}
			info, err := nixversion.Parse(out)
			if err != nil {
				return plan.Fail(fmt.Sprintf("cannot read the Nix version from %q", strings.TrimSpace(string(out))), "")
			}
			facts, err := nixversion.GatherInstallFacts(env.Paths.Root, env.GOOS, env.osPath(env.Paths.NixConfDir))
			if err != nil {
				return plan.Fail("inspect the Nix installation: "+err.Error(), "")
			}
			facts.Flavor = info.Flavor
			if running, ok := daemonRunning(ctx, env, facts); ok {
				facts.DaemonRunning = running
			}
			inst := nixversion.DetectInstall(facts)
			env.Facts.Set(factNixInfo, info)
			env.Facts.Set(factNixInstall, inst)
			// This Nix's known bug with ports in ssh-ng:// URIs does not touch
			// our builder (it is reached through an ssh alias); the machines
			// step warns about other lines that have it.
			return plan.Okf("%s, %s", info, installWords(inst))
		}}
}

func installWords(inst nixversion.Install) string {
	s := inst.Kind.String()
	if inst.Reason != "" {
		s += " (" + inst.Reason + ")"
	}
	return s
}

// nixInfo returns what the nix step found, or a result explaining that
// the nix step must pass first.
func nixInfo(env *Env) (nixversion.Info, nixversion.Install, *plan.Result) {
	info, ok1 := Fact[nixversion.Info](env.Facts, factNixInfo)
	inst, ok2 := Fact[nixversion.Install](env.Facts, factNixInstall)
	if !ok1 || !ok2 {
		r := plan.Block("Nix was not found", "fix the nix step first")
		return info, inst, &r
	}
	return info, inst, nil
}
