package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// Fact keys written by the host step.
const (
	factAppleSilicon = "host.applesilicon" // bool
)

func hostStep(env *Env) plan.Step {
	return plan.Step{ID: "host", Title: "Host",
		Check: func(ctx context.Context) plan.Result {
			user := "running as " + currentUser()
			var warning string
			if os.Geteuid() == 0 && os.Getenv("SUDO_USER") != "" && env.GOOS == "darwin" {
				// Docker Desktop's socket and ~/.docker belong to the user:
				// paths derive from SUDO_USER's home, but say so.
				warning = "running under sudo: Docker and ~/.ssh are taken from " + os.Getenv("SUDO_USER") + "'s home; run without sudo, the tool asks for root itself"
			}
			if os.Geteuid() != 0 && env.Paths.Root == "/" {
				if _, err := exec.LookPath("sudo"); err != nil {
					return plan.Block("sudo is not available and the tool is not root", "run as an administrator account that can use sudo")
				}
			}
			if env.GOOS != "darwin" {
				r := plan.Okf("%s/%s (not macOS: the macOS-only steps are skipped), %s", env.GOOS, env.GOARCH, user)
				r.Warning = warning
				return r
			}
			ver, err := env.Mac.SWVers(ctx)
			if err != nil {
				return plan.Fail("read the macOS version (sw_vers): "+err.Error(), "")
			}
			cpu, err := env.Mac.CPU(ctx)
			if err != nil {
				return plan.Fail("read the CPU type (sysctl): "+err.Error(), "")
			}
			env.Facts.Set(factAppleSilicon, cpu.AppleSilicon)
			kind := "Intel"
			if cpu.AppleSilicon {
				kind = "Apple Silicon"
			}
			r := plan.Okf("%s on %s (%s, %d CPUs), %s", ver, kind, cpu.Brand, cpu.NCPU, user)
			if cpu.Translated {
				warning = strings.TrimPrefix(warning+"; this is the x86_64 build running under Rosetta: install the arm64 build", "; ")
			}
			r.Warning = warning
			return r
		}}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid %d", os.Geteuid())
}

func rosettaStep(env *Env) plan.Step {
	return plan.Step{ID: "rosetta", Title: "Rosetta", Needs: []string{"host"},
		Check: func(ctx context.Context) plan.Result {
			if env.GOOS != "darwin" {
				return plan.Skip("not macOS")
			}
			arm, _ := Fact[bool](env.Facts, factAppleSilicon)
			if !arm {
				return plan.Skip("Intel Mac: x86_64 runs natively")
			}
			if !macos.RosettaNeeded(arm, env.Emulation) {
				return plan.Skip("--emulation qemu: the Docker VM emulates x86_64 itself")
			}
			st, err := env.Mac.Rosetta(ctx)
			if err != nil {
				return plan.Fail("check Rosetta: "+err.Error(), "")
			}
			if st.Installed() {
				return plan.Okf("%s", st.Detail())
			}
			return plan.Need(st.Detail(), plan.Change{Kind: plan.ChangeCommand, Summary: "install Rosetta 2",
				Command: macos.RosettaInstallCommand(), Root: true})
		},
		Apply: func(ctx context.Context) error {
			if _, err := env.Run.Run(ctx, host.Cmd{Args: macos.RosettaInstallCommand(), Root: true}); err != nil {
				return fmt.Errorf("install Rosetta: %w", err)
			}
			return nil
		}}
}
