package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
	"github.com/nixbuilder/nixbuilder-setup/internal/output"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/steps"
)

// newEnv builds the steps' environment from the options.
func newEnv(o *options) (*steps.Env, error) {
	cfg := o.cfg
	cfg.KeepKey, cfg.KeepStore = o.keepKey, o.keepStore
	cfg.Version = version()
	if o.systems != "" {
		for _, s := range strings.Split(o.systems, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Systems = append(cfg.Systems, s)
			}
		}
	}
	paths := host.NewPaths(o.root, runtime.GOOS, os.Getenv, "")
	// What the last setup chose, for the flags not given now: doctor,
	// repair and uninstall look at the builder that was set up.
	if s, where, ok := steps.Remembered(paths, cfg.Name); ok && o.changed != nil {
		if used := s.Apply(&cfg, o.changed); len(used) > 0 && !o.json && o.stderr != nil {
			fmt.Fprintf(o.stderr, "nixbuilder-setup: using the last setup's --%s (kept in %s)\n", strings.Join(used, ", --"), where)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	x := host.NewExec()
	env := &steps.Env{
		Config: cfg,
		Paths:  paths,
		Run:    x,
		GOOS:   runtime.GOOS,
		GOARCH: runtime.GOARCH,
		Nix:    "nix",
		SSH:    "ssh",
		Mac:    macos.NewProbe(),
		Facts:  &steps.Facts{},
	}
	if x.IsRoot || o.root != "" {
		env.Files = host.LocalFiles{}
		x.IsRoot = x.IsRoot || o.root != ""
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program's path (needed to write root-owned files through sudo): %w", err)
		}
		env.Files = host.SudoFiles{Runner: x, Self: self}
	}
	return env, nil
}

// stepsFor returns the steps a mode runs, limited by --only and --skip.
func stepsFor(env *steps.Env, o *options, mode plan.Mode) ([]plan.Step, error) {
	all := steps.Setup(env)
	if mode == plan.Uninstall {
		all = steps.Uninstall(env)
	}
	if err := plan.Validate(all); err != nil {
		return nil, err
	}
	sel, err := plan.Select(all, o.only, o.skip)
	if err != nil {
		return nil, usageError{err}
	}
	return sel, nil
}

func runEngine(ctx context.Context, o *options, mode plan.Mode, stdio IO) (err error) {
	if o.json {
		// A run that stops before the engine still ends its stream with a
		// result object, so that scripts always find one.
		defer func() {
			var ee exitError
			if err == nil || errors.As(err, &ee) {
				return
			}
			code := plan.ExitFailed
			var ue usageError
			if errors.As(err, &ue) {
				code = plan.ExitUsage
			}
			(&output.JSON{Out: stdio.Out}).Event(plan.Event{Type: plan.EventResult, Command: mode, Exit: &code, Summary: err.Error()})
		}()
	}
	env, err := newEnv(o)
	if err != nil {
		return err
	}
	list, err := stepsFor(env, o, mode)
	if err != nil {
		return err
	}
	// Runs that change things take the lock; checks can run beside them.
	if mode != plan.Doctor && mode != plan.Plan {
		lock, err := host.AcquireLock(env.Paths.LockFile)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	x, _ := env.Run.(*host.Exec)
	opts := plan.Options{Mode: mode, AssumeYes: o.yes}
	if os.Getenv("NIXBUILDER_TRACE") != "" {
		// How long each check and change took, for finding slow ones.
		var mu sync.Mutex
		t0 := time.Now()
		opts.Trace = func(id, phase string, start time.Time, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stdio.Err, "trace: %-14s %-5s start %6.1fms took %6.1fms\n", id, phase,
				float64(start.Sub(t0).Microseconds())/1000, float64(took.Microseconds())/1000)
		}
	}
	interactive := isTerminal(stdio.In) && isTerminal(stdio.Out)

	var fe plan.Frontend
	switch {
	case o.json:
		fe = &output.JSON{Out: stdio.Out, Err: stdio.Err}
	case interactive && !o.plain && runTUI != nil:
		code, err := runTUI(ctx, o, env, mode, list, stdio)
		if err != nil {
			return err
		}
		return exitCode(code)
	default:
		fe = &output.Plain{Out: stdio.Out, Err: stdio.Err, Color: useColor(stdio.Out),
			In: stdio.In, Interactive: interactive, Verbose: o.verbose}
	}
	if x != nil && !x.IsRoot {
		// On a terminal, ask for the password once, before the checks:
		// some of them read root-only files (the key, root's known_hosts).
		opts.AuthorizeFirst = interactive
		opts.Authorize = func(ctx context.Context) error {
			if !interactive {
				return x.CheckNonInteractive(ctx)
			}
			cmd := x.AuthorizeCmd()
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
			return cmd.Run()
		}
	}
	sum := plan.Run(ctx, list, fe, opts)
	if sum.Exit == plan.ExitInterrupted && ctx.Err() != nil {
		return exitCode(plan.ExitInterrupted)
	}
	return exitCode(sum.Exit)
}

func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return exitError{code}
}

// runTUI runs the interactive screen; set by tui.go.
var runTUI func(ctx context.Context, o *options, env *steps.Env, mode plan.Mode, list []plan.Step, stdio IO) (int, error)

func runStatus(ctx context.Context, o *options, stdio IO) error {
	env, err := newEnv(o)
	if err != nil {
		return err
	}
	lines := steps.Status(ctx, env)
	bad := false
	for _, l := range lines {
		mark := "ok  "
		if !l.OK {
			mark, bad = "--  ", true
		}
		fmt.Fprintf(stdio.Out, "%s%-16s %s\n", mark, l.Component, l.Text)
	}
	if bad {
		return exitCode(plan.ExitFailed)
	}
	return nil
}
