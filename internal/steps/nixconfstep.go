package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// ownership says which file our nix.conf settings belong in.
func (env *Env) ownership() (nixconf.Ownership, error) {
	facts := func(path string) (nixconf.FileFacts, error) {
		c, err := env.read(path)
		if err != nil {
			return nixconf.FileFacts{}, err
		}
		return nixconf.FileFacts{Exists: c.Info.Exists, IsSymlink: c.Info.Symlink, LinkTarget: c.Info.Target, Data: c.Data}, nil
	}
	nc, err := facts(env.Paths.NixConf())
	if err != nil {
		return nixconf.Ownership{}, err
	}
	cc, err := facts(env.Paths.NixCustomConf())
	if err != nil {
		return nixconf.Ownership{}, err
	}
	return nixconf.DetectOwnership(env.Paths.NixConfDir, nc, cc)
}

// nixConfWant computes our block's file and its new content.
func (env *Env) nixConfWant() (current, []byte, error) {
	own, err := env.ownership()
	if err != nil {
		return current{}, nil, err
	}
	cur, err := env.read(own.File)
	if err != nil {
		return cur, nil, err
	}
	body, _, err := nixconf.NixConfBody(userBuilders(cur.Data, env.Name), env.osPath(env.Paths.Machines()))
	if err != nil {
		return cur, nil, err
	}
	want, err := nixconf.UpsertManagedBlock(cur.Data, env.Name, body)
	return cur, want, err
}

// candidate is the configuration directory as it will be after the change:
// the files Nix reads, for validation.
func (env *Env) candidate(path string, data []byte) map[string][]byte {
	files := map[string][]byte{}
	for _, name := range []string{"nix.conf", "nix.custom.conf", "machines"} {
		if c, err := env.read(filepath.Join(env.Paths.NixConfDir, name)); err == nil && c.Info.Exists {
			files[name] = c.Data
		}
	}
	if filepath.Dir(path) == env.Paths.NixConfDir {
		files[filepath.Base(path)] = data
	}
	return files
}

func nixConfStep(env *Env) plan.Step {
	return plan.Step{ID: "nix-conf", Title: "nix.conf", Needs: []string{"nix", "machines"},
		Check: func(ctx context.Context) plan.Result {
			own, err := env.ownership()
			var se *nixconf.SyntaxError
			switch {
			case errors.As(err, &se):
				return plan.Fail(fmt.Sprintf("%s line %d is not valid: %q (%s)", env.Paths.NixConf(), se.Line, se.Text, se.Why),
					"fix or remove that line by hand — nixbuilder-setup does not guess what it meant — then run `nixbuilder-setup repair`")
			case err != nil:
				return readProblem(err)
			case own.Blocked:
				hint := own.Reason
				if own.Layout == nixconf.NixDarwin {
					if m, blocked := env.machine(); blocked == nil {
						if snip, err := nixconf.NixDarwinSnippet(m); err == nil {
							hint = "nix-darwin owns nix.conf: add this to your configuration and run `darwin-rebuild switch`:\n" + snip
						}
					}
				}
				return plan.Block(fmt.Sprintf("%s is managed by %s; nixbuilder-setup will not edit it", env.Paths.NixConf(), own.Layout), hint)
			}
			cur, want, err := env.nixConfWant()
			if errors.As(err, &se) {
				return plan.Fail(fmt.Sprintf("%s line %d is not valid: %q (%s)", own.File, se.Line, se.Text, se.Why),
					"fix or remove that line by hand, then run `nixbuilder-setup repair`")
			}
			if err != nil {
				return plan.Fail(fmt.Sprintf("%s: %v", own.File, err), "")
			}
			if !bytes.Equal(want, cur.Data) {
				detail := fmt.Sprintf("%s lacks builders = @%s and builders-use-substitutes = true", own.File, env.osPath(env.Paths.Machines()))
				if _, found, _ := nixconf.ManagedBlock(cur.Data, env.Name); found {
					detail = fmt.Sprintf("the nixbuilder-setup block in %s is out of date", own.File)
				}
				return plan.Need(detail, cur.change(want))
			}
			// The file is right; make sure Nix sees it that way.
			eff, err := env.nixConfigShow(ctx)
			if err != nil {
				return plan.Fail(err.Error(), "fix the line Nix names, then run `nixbuilder-setup repair`")
			}
			if msg := effectiveProblem(eff, env.osPath(env.machinesFile())); msg != "" {
				return plan.Fail(msg, "another nix.conf file (an include, or NIX_CONFIG) overrides ours: remove that setting there")
			}
			r := plan.Okf("builders includes @%s, builders-use-substitutes = true (%s)", env.osPath(env.Paths.Machines()), own.File)
			if own.Layout == nixconf.Determinate && !own.CustomIncluded {
				r.Warning = "nix.conf does not include nix.custom.conf"
			}
			return r
		},
		Apply: func(ctx context.Context) error {
			cur, want, err := env.nixConfWant()
			if err != nil {
				return err
			}
			eff, err := nixconf.Validate(ctx, env.Nix, env.candidate(cur.Path, want))
			if err != nil {
				return fmt.Errorf("nix refuses the new %s, so it was not installed: %w", cur.Path, err)
			}
			if msg := effectiveProblem(eff.Settings, env.osPath(env.machinesFile())); msg != "" && filepath.Dir(cur.Path) == env.Paths.NixConfDir {
				return fmt.Errorf("the new %s would not take effect (%s), so it was not installed", cur.Path, msg)
			}
			return env.write(cur.Path, want, 0o644, env.isOriginal(cur.Data))
		}}
}

// nixConfigShow asks the installed Nix for its effective settings.
func (env *Env) nixConfigShow(ctx context.Context) (map[string]string, error) {
	info, _, blocked := nixInfo(env)
	if blocked != nil {
		return nil, errors.New(blocked.Detail)
	}
	args := append([]string{env.Nix}, info.ConfigShowArgs()...)
	var cenv []string
	if env.Paths.Root != "/" || env.Paths.NixConfDir != "/etc/nix" {
		cenv = []string{"NIX_CONF_DIR=" + env.Paths.NixConfDir}
	}
	out, err := env.Run.Run(ctx, host.Cmd{Args: args, Env: cenv})
	if err != nil {
		return nil, fmt.Errorf("nix cannot read its configuration: %w", err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return settings, nil
}

// effectiveProblem says what is wrong with Nix's effective settings.
func effectiveProblem(s map[string]string, machines string) string {
	if v := s["builders-use-substitutes"]; v != "true" {
		return fmt.Sprintf("Nix reports builders-use-substitutes = %s", v)
	}
	b := s["builders"]
	for _, f := range nixconf.BuilderFiles(b) {
		if f == machines {
			return ""
		}
	}
	return fmt.Sprintf("Nix reports builders = %q, which does not include @%s", b, machines)
}
