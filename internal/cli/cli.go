// Package cli is the command line: commands, flags, output mode selection
// and exit codes. It wires the engine, the steps and a frontend together.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/steps"
)

// Version is set at build time with -ldflags "-X …/internal/cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// usageError is a mistake on the command line: exit 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitError carries an exit code out of a command that already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// IO is the process's standard streams, replaceable in tests.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

type options struct {
	cfg       steps.Config
	yes       bool
	json      bool
	plain     bool
	verbose   bool
	root      string
	only      []string
	skip      []string
	systems   string
	keepStore bool
	keepKey   bool
	// changed reports whether a flag was given on this command line.
	changed func(flag string) bool
	stderr  io.Writer
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdio IO) int {
	if len(args) > 0 && args[0] == host.PrivilegedCommand {
		// The root half of SudoFiles: no flags, no output but the result.
		if err := host.ServePrivileged(args[1:], stdio.In, stdio.Out); err != nil {
			fmt.Fprintln(stdio.Err, err)
			if errors.Is(err, os.ErrNotExist) {
				return 3
			}
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(stdio.Err, "nixbuilder-setup: %v\nRun 'nixbuilder-setup --help' for usage.\n", err)
		return plan.ExitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(stdio.Err, "nixbuilder-setup: interrupted")
		return plan.ExitInterrupted
	default:
		fmt.Fprintf(stdio.Err, "nixbuilder-setup: %v\n", err)
		return plan.ExitFailed
	}
}

// isCobraUsage recognises cobra's own flag and argument errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "unknown command", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "bad flag syntax", "if any flags in the group"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRoot(stdio IO) *cobra.Command {
	o := &options{cfg: steps.DefaultConfig(), stderr: stdio.Err}
	root := &cobra.Command{
		Use:   "nixbuilder-setup",
		Short: "Set up, check, repair and remove a local Linux builder for Nix",
		Long: `nixbuilder-setup gives this machine a Linux builder for Nix: a container
with sshd and Nix on 127.0.0.1, registered in /etc/nix/machines, trusted by
root's ssh, and proven with a remote build. It checks before it changes, shows
every change before making it, and changes only what is wrong.

Without a command it runs setup (a guided screen on a terminal).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEngine(cmd.Context(), o, plan.Setup, stdio)
		},
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { o.changed = cmd.Flags().Changed }

	f := root.PersistentFlags()
	f.BoolVarP(&o.yes, "yes", "y", false, "never prompt: apply every change shown (needed when stdin is not a terminal)")
	f.BoolVar(&o.json, "json", false, "print NDJSON events on stdout (see docs/json.md)")
	f.BoolVar(&o.plain, "plain", false, "plain line output, no interactive screen, even on a terminal")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "plain mode: show build logs as they stream")
	f.StringVar(&o.cfg.Name, "name", o.cfg.Name, "builder name: container, ssh alias, volumes and key file derive from it")
	f.IntVar(&o.cfg.Port, "port", o.cfg.Port, "port on 127.0.0.1 for the builder's sshd")
	f.StringVar(&o.systems, "systems", "", "systems to advertise, comma-separated (default: what the builder can run)")
	f.IntVar(&o.cfg.MaxJobs, "max-jobs", 0, "max jobs on the builder (default: its CPUs)")
	f.IntVar(&o.cfg.SpeedFactor, "speed-factor", o.cfg.SpeedFactor, "speed factor in the machines line")
	f.StringVar(&o.cfg.Emulation, "emulation", o.cfg.Emulation, "how the builder runs x86_64 on Apple Silicon: rosetta or qemu")
	f.StringVar(&o.cfg.BuilderContext, "builder-context", "", "a Docker build context directory to use instead of the embedded one")
	f.StringVar(&o.cfg.BaseImage, "base-image", "", "base image for the embedded Dockerfile (build arg BASE_IMAGE)")
	f.StringVar(&o.cfg.Identity, "identity", "", "use this existing private key instead of generating the dedicated one")
	f.StringVar(&o.cfg.Sanity, "sanity", o.cfg.Sanity, "proof build after setup: probe, hello, both or none")
	f.StringSliceVar(&o.only, "only", nil, "run only these steps (IDs, comma-separated)")
	f.StringSliceVar(&o.skip, "skip", nil, "skip these steps (IDs, comma-separated)")
	f.StringVar(&o.root, "root", os.Getenv("NIXBUILDER_ROOT"), "treat DIR as the file system root (for tests)")
	_ = f.MarkHidden("root")
	root.MarkFlagsMutuallyExclusive("json", "plain")

	add := func(c *cobra.Command) {
		c.Args = cobra.NoArgs
		root.AddCommand(c)
	}
	add(&cobra.Command{Use: "setup", Short: "Check every step and apply what is not in place (the default)",
		RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(cmd.Context(), o, plan.Setup, stdio) }})
	add(&cobra.Command{Use: "doctor", Short: "Check every step and say what is wrong and how to fix it; change nothing",
		Long: "doctor checks every step concurrently and changes nothing.\nExit 0: healthy. Exit 1: problems (each with its fix). Exit 3: blocked on something only you can do.",
		RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(cmd.Context(), o, plan.Doctor, stdio) }})
	add(&cobra.Command{Use: "repair", Short: "Apply only the steps doctor finds failing, and what depends on them",
		RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(cmd.Context(), o, plan.Repair, stdio) }})
	add(&cobra.Command{Use: "plan", Short: "Print the exact changes setup would make (unified diffs); change nothing",
		RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(cmd.Context(), o, plan.Plan, stdio) }})
	add(&cobra.Command{Use: "status", Short: "One line per component: container, port, key, host key, machines, nix.conf, daemon",
		RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), o, stdio) }})
	un := &cobra.Command{Use: "uninstall", Short: "Remove exactly what setup added, restoring files byte for byte",
		RunE: func(cmd *cobra.Command, _ []string) error { return runEngine(cmd.Context(), o, plan.Uninstall, stdio) }}
	un.Flags().BoolVar(&o.keepStore, "keep-store", false, "keep the builder's /nix volume (its store)")
	un.Flags().BoolVar(&o.keepKey, "keep-key", false, "keep the builder key files in /etc/nix")
	add(un)
	add(&cobra.Command{Use: "version", Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(stdio.Out, "nixbuilder-setup %s %s/%s\n", version(), runtime.GOOS, runtime.GOARCH)
			return nil
		}})
	return root
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}
