package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// Uninstall returns the steps that remove what setup added. Each step's
// Check says whether anything of ours is left; Apply removes it.
func Uninstall(env *Env) []plan.Step {
	return []plan.Step{
		nixStep(env),
		restoreStep(env, "remove-nix-conf", "nix.conf block", func() []string {
			if own, err := env.ownership(); err == nil && own.File != "" {
				return []string{own.File}
			}
			return []string{env.Paths.NixConf()}
		}, env.removeBlock, true),
		restoreStep(env, "remove-machines", "machines line", func() []string { return []string{env.machinesFile()} }, env.removeBlock, false),
		restoreStep(env, "remove-known-hosts", "known hosts", env.Paths.KnownHostsFiles, func(b []byte) ([]byte, error) {
			return sshkeys.RemoveKnownHost(b, env.Alias())
		}, false),
		removeFileStep(env, "remove-ssh-config", "ssh alias", func() []string { return []string{env.Paths.AliasFile(env.Name)} }),
		restoreStep(env, "remove-ssh-blocks", "ssh config block", env.homeConfigs, env.removeBlock, false),
		removeContainerStep(env),
		removeFileStep(env, "remove-key", "builder key", func() []string {
			if env.KeepKey || env.Identity != "" {
				return nil // never the user's own key
			}
			return []string{env.Paths.Key(env.Name), env.Paths.Key(env.Name) + ".pub"}
		}),
		withNeeds(daemonStep(env), "nix", "remove-nix-conf"),
	}
}

func withNeeds(s plan.Step, needs ...string) plan.Step {
	s.Needs = needs
	return s
}

func (env *Env) removeBlock(b []byte) ([]byte, error) { return nixconf.RemoveManagedBlock(b, env.Name) }

// restoration is a file as uninstall leaves it.
type restoration struct {
	cur, backup current
	restored    []byte
	remove      bool // we created the file and nothing else is in it
}

func (env *Env) restore(path string, edit func([]byte) ([]byte, error)) (restoration, error) {
	var r restoration
	var err error
	if r.cur, err = env.read(path); err != nil {
		return r, err
	}
	if r.backup, err = env.read(path + host.BackupSuffix); err != nil {
		return r, err
	}
	if !r.cur.Info.Exists {
		return r, nil
	}
	if r.restored, err = edit(r.cur.Data); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	// Without a backup the file did not exist before setup.
	r.remove = !r.backup.Info.Exists && len(r.restored) == 0
	return r, nil
}

// restoreStep removes our part of files: our block or our lines. A file
// that existed comes back as it was (its backup proves it byte for byte,
// and is then removed); a file we created goes when nothing else is in it.
func restoreStep(env *Env, id, what string, files func() []string, edit func([]byte) ([]byte, error), validate bool) plan.Step {
	return plan.Step{ID: id, Title: "Remove " + what, Needs: []string{"nix"},
		Check: func(ctx context.Context) plan.Result {
			var changes []plan.Change
			var found, warnings []string
			for _, path := range files() {
				r, err := env.restore(path, edit)
				if err != nil {
					return plan.Fail(err.Error(), "fix the nixbuilder-setup block markers by hand")
				}
				switch {
				case r.remove:
					found = append(found, path+" holds only our part")
					changes = append(changes, plan.RemoveChange(path, r.cur.Data, true))
				case r.cur.Info.Exists && !bytes.Equal(r.restored, r.cur.Data):
					found = append(found, "our part is in "+path)
					changes = append(changes, r.cur.change(r.restored))
					if r.backup.Info.Exists && !bytes.Equal(r.restored, r.backup.Data) {
						warnings = append(warnings, path+" was edited after setup: those edits are kept, only our part goes")
					}
				}
				if r.backup.Info.Exists {
					if len(found) == 0 {
						found = append(found, "the backup "+r.backup.Path+" is left")
					}
					changes = append(changes, plan.Change{Kind: plan.ChangeRemove, Path: r.backup.Path, Summary: "remove " + r.backup.Path, Root: true})
				}
			}
			if len(changes) == 0 {
				return plan.Okf("nothing of ours in %s", strings.Join(files(), " or "))
			}
			res := plan.Need(strings.Join(found, "; "), changes...)
			res.Warning = strings.Join(warnings, "; ")
			return res
		},
		Apply: func(ctx context.Context) error {
			for _, path := range files() {
				r, err := env.restore(path, edit)
				if err != nil {
					return err
				}
				switch {
				case r.remove:
					if err := env.Files.Remove(path); err != nil {
						return err
					}
				case r.cur.Info.Exists && !bytes.Equal(r.restored, r.cur.Data):
					if validate {
						if _, err := nixconf.Validate(ctx, env.Nix, env.candidate(path, r.restored)); err != nil {
							return fmt.Errorf("nix refuses %s without our block, so it was left as it is: %w", path, err)
						}
					}
					if err := env.Files.WriteFile(path, r.restored, host.WriteOptions{}); err != nil {
						return err
					}
				}
				if r.backup.Info.Exists {
					if err := env.Files.Remove(r.backup.Path); err != nil {
						return err
					}
				}
			}
			return nil
		}}
}

func removeFileStep(env *Env, id, what string, files func() []string) plan.Step {
	present := func() ([]current, error) {
		var out []current
		for _, p := range files() {
			c, err := env.read(p)
			if err != nil {
				return nil, err
			}
			if c.Info.Exists {
				out = append(out, c)
			}
		}
		return out, nil
	}
	return plan.Step{ID: id, Title: "Remove " + what,
		Check: func(ctx context.Context) plan.Result {
			cs, err := present()
			if err != nil {
				return readProblem(err)
			}
			if len(cs) == 0 {
				return plan.Okf("no %s left", what)
			}
			var changes []plan.Change
			for _, c := range cs {
				changes = append(changes, plan.Change{Kind: plan.ChangeRemove, Path: c.Path, Summary: "remove " + c.Path, Root: true})
			}
			return plan.Need(fmt.Sprintf("%d file(s) left", len(cs)), changes...)
		},
		Apply: func(ctx context.Context) error {
			cs, err := present()
			if err != nil {
				return err
			}
			for _, c := range cs {
				if err := env.Files.Remove(c.Path); err != nil {
					return err
				}
			}
			return nil
		}}
}

func removeContainerStep(env *Env) plan.Step {
	leftovers := func(ctx context.Context) ([]string, error) {
		c, err := env.Docker()
		if err != nil {
			return nil, err
		}
		var left []string
		if ct, err := c.InspectContainer(ctx, env.Name); err == nil {
			if err := docker.CheckOwned(ct); err != nil {
				return nil, err
			}
			left = append(left, "container "+env.Name)
		} else if !errors.Is(err, docker.ErrNotFound) {
			return nil, err
		}
		m, err := docker.ListManaged(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, v := range m.Volumes {
			if v.Name == env.Name+"-state" || (v.Name == env.Name+"-nix" && !env.KeepStore) {
				left = append(left, "volume "+v.Name)
			}
		}
		for _, im := range m.Images {
			for _, t := range im.Tags {
				if strings.HasPrefix(t, env.Name+":") {
					left = append(left, "image "+t)
				}
			}
		}
		return left, nil
	}
	return plan.Step{ID: "remove-container", Title: "Remove builder container",
		Check: func(ctx context.Context) plan.Result {
			left, err := leftovers(ctx)
			if err != nil {
				return dockerProblem(err)
			}
			if len(left) == 0 {
				return plan.Okf("no container, image or volume of %s left", env.Name)
			}
			var cs []plan.Change
			for _, l := range left {
				cs = append(cs, plan.Change{Kind: plan.ChangeContainer, Summary: "remove " + l})
			}
			return plan.Need(strings.Join(left, ", ")+" left", cs...)
		},
		Apply: func(ctx context.Context) error {
			c, err := env.Docker()
			if err != nil {
				return err
			}
			return docker.Uninstall(ctx, c, env.Name, env.KeepStore)
		}}
}
