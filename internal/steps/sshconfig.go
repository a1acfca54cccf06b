package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// osPath is path as programs on the machine see it: without the test root.
func (env *Env) osPath(path string) string {
	if env.Paths.Root == "/" {
		return path
	}
	rel, err := filepath.Rel(env.Paths.Root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return "/" + rel
}

func (env *Env) aliasConfig() sshkeys.AliasConfig {
	return sshkeys.NewAliasConfig(env.Name, env.Port, env.keyPath())
}

func sshConfigStep(env *Env) plan.Step {
	return plan.Step{ID: "ssh-config", Title: "SSH alias", After: []string{"key"},
		Check: func(ctx context.Context) plan.Result {
			path := env.Paths.AliasFile(env.Name)
			want := sshkeys.RenderAlias(env.aliasConfig())
			cur, err := env.read(path)
			if err != nil {
				return readProblem(err)
			}
			if !bytes.Equal(cur.Data, want) {
				detail := "no alias file " + path
				if cur.Info.Exists {
					detail = path + " differs from the alias block (edited by hand?)"
				}
				changes := []plan.Change{cur.change(want)}
				for _, home := range env.homeConfigsWithBlock() {
					if hc, err := env.read(home); err == nil {
						if hw, err := env.withHomeBlock(hc.Data); err == nil && !bytes.Equal(hw, hc.Data) {
							changes = append(changes, hc.change(hw))
						}
					}
				}
				return plan.Need(detail, changes...)
			}
			sys, err := env.read(env.Paths.SSHConfig)
			if err != nil {
				return readProblem(err)
			}
			if !sshkeys.HasInclude(sys.Data, env.osPath(path)) {
				return plan.Block(fmt.Sprintf("%s does not include %s, so OpenSSH never reads the alias",
					env.Paths.SSHConfig, env.osPath(filepath.Dir(path))),
					fmt.Sprintf("add the line `%s` at the top of %s", strings.TrimSpace(sshkeys.IncludeLine), env.Paths.SSHConfig))
			}
			return env.resolveAlias(ctx, path)
		},
		Apply: func(ctx context.Context) error {
			if err := env.write(env.Paths.AliasFile(env.Name), sshkeys.RenderAlias(env.aliasConfig()), 0o644, false); err != nil {
				return err
			}
			// Users' own configs that override the alias get our block at
			// their top (first value wins); blocks already there are updated.
			files := env.homeConfigsWithBlock()
			if res := env.resolveAlias(ctx, env.Paths.AliasFile(env.Name)); res.Status == plan.NeedsApply {
				for _, c := range res.Changes {
					files = append(files, c.Path)
				}
			}
			for _, path := range slices.Compact(slices.Sorted(slices.Values(files))) {
				cur, err := env.read(path)
				if err != nil {
					return err
				}
				want, err := env.withHomeBlock(cur.Data)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				if !bytes.Equal(want, cur.Data) {
					uid, gid := ownerOf(path)
					if err := env.Files.WriteFile(path, want, host.WriteOptions{Mode: 0o600, UID: uid, GID: gid, Backup: env.isOriginal(cur.Data)}); err != nil {
						return err
					}
				}
			}
			return nil
		}}
}

// homeConfigs are the users' own ssh configs, which OpenSSH reads before
// the system one: root's (the daemon's) and the invoking user's.
func (env *Env) homeConfigs() []string {
	r := filepath.Join(env.Paths.RootHome, ".ssh", "config")
	u := filepath.Join(env.Paths.UserHome, ".ssh", "config")
	if r == u {
		return []string{r}
	}
	return []string{r, u}
}

// homeConfigsWithBlock are the home configs that hold our block already.
func (env *Env) homeConfigsWithBlock() []string {
	var out []string
	for _, p := range env.homeConfigs() {
		if c, err := env.read(p); err == nil && !env.isOriginal(c.Data) {
			out = append(out, p)
		}
	}
	return out
}

// withHomeBlock puts our alias block at the top of a user's ssh config, or
// updates it where it is. It ends with `Match all`, so that the user's own
// top-level lines after it keep applying to every host, as before.
func (env *Env) withHomeBlock(old []byte) ([]byte, error) {
	body := append(aliasBlock(env.aliasConfig()), "Match all\n"...)
	if _, found, err := nixconf.ManagedBlock(old, env.Name); err != nil {
		return nil, err
	} else if found {
		return nixconf.UpsertManagedBlock(old, env.Name, body)
	}
	block, err := nixconf.UpsertManagedBlock(nil, env.Name, body)
	if err != nil {
		return nil, err
	}
	return append(block, old...), nil
}

// aliasBlock is the alias file without its header comment.
func aliasBlock(c sshkeys.AliasConfig) []byte {
	b := sshkeys.RenderAlias(c)
	if i := bytes.Index(b, []byte("Host ")); i > 0 {
		b = b[i:]
	}
	return b
}

// resolveAlias asks OpenSSH what it will do for the alias, as root (the
// daemon's identity) and as the invoking user, and reports each value that
// another config file overrides.
func (env *Env) resolveAlias(ctx context.Context, aliasFile string) plan.Result {
	type who struct {
		name    string
		command []string
		args    []string
	}
	var queries []who
	switch {
	case env.Paths.Root != "/":
		// A re-rooted test machine: the system files OpenSSH reads are the
		// real ones, so check our block on its own.
		queries = append(queries, who{"root", []string{env.SSH}, []string{"-F", aliasFile}})
	case os.Geteuid() == 0:
		queries = append(queries, who{"root", []string{env.SSH}, nil})
		if u := os.Getenv("SUDO_USER"); u != "" && u != "root" {
			queries = append(queries, who{u, []string{"sudo", "-n", "-H", "-u", u, env.SSH}, nil})
		}
	default:
		queries = append(queries, who{"you", []string{env.SSH}, nil})
		queries = append(queries, who{"root", []string{"sudo", "-n", "-H", env.SSH}, nil})
	}
	var problems, fixable, fixFiles, warnings, checked []string
	for _, q := range queries {
		res, err := sshkeys.ResolveConfig(ctx, sshkeys.ConfigQuery{Command: q.command, Args: q.args, Alias: env.Alias(),
			ReadFile: env.Files.ReadFile})
		var ce *sshkeys.ConfigError
		switch {
		case errors.As(err, &ce):
			return plan.Block(fmt.Sprintf("OpenSSH rejects %s line %d: %s", ce.File, ce.Line, ce.Message),
				"fix that line of your file (on a non-Apple ssh, `IgnoreUnknown UseKeychain` before it helps)")
		case err != nil && q.name == "root" && os.Geteuid() != 0:
			warnings = append(warnings, "root's view not checked: "+err.Error())
			continue
		case err != nil:
			return plan.Fail("`ssh -G "+env.Alias()+"` failed: "+err.Error(), "")
		}
		checked = append(checked, q.name)
		for _, o := range res.Check(env.aliasConfig()) {
			line := fmt.Sprintf("for %s, %s", q.name, o.String())
			if o.Option == "user" {
				// The machines line names root@ in the URI, which beats a
				// User from any config file; only `ssh <alias>` is affected.
				warnings = append(warnings, line)
				continue
			}
			if home := env.homeConfigFor(o.File); home != "" {
				fixable = append(fixable, line)
				if !slices.Contains(fixFiles, home) {
					fixFiles = append(fixFiles, home)
				}
				continue
			}
			problems = append(problems, line)
		}
	}
	if len(problems) == 0 && len(fixFiles) > 0 {
		var changes []plan.Change
		for _, path := range fixFiles {
			cur, err := env.read(path)
			if err != nil {
				return readProblem(err)
			}
			want, err := env.withHomeBlock(cur.Data)
			if err != nil {
				return plan.Fail(fmt.Sprintf("%s: %v", path, err), "")
			}
			changes = append(changes, cur.change(want))
		}
		r := plan.Need("your ssh config overrides the alias: "+strings.Join(fixable, "; ")+" — our Host block goes at the top of that file, where it comes first", changes...)
		r.Warning = strings.Join(warnings, "; ")
		return r
	}
	problems = append(problems, fixable...)
	if len(problems) > 0 {
		r := plan.Block("another ssh config overrides the alias: "+strings.Join(problems, "; "),
			"OpenSSH uses the first value it reads, and ~/.ssh/config comes first: limit those lines to the hosts they are meant for (e.g. `Host !"+env.Alias()+" *`), or remove them")
		r.Warning = strings.Join(warnings, "; ")
		return r
	}
	r := plan.Okf("%s resolves to 127.0.0.1:%d as root with %s (checked for %s)", env.Alias(), env.Port, env.keyPath(), strings.Join(checked, " and "))
	r.Warning = strings.Join(warnings, "; ")
	return r
}

// homeConfigFor maps a file ssh named to one of the home configs we may
// add our block to; "" for any other file (the system config, includes).
func (env *Env) homeConfigFor(file string) string {
	if file == "" {
		return ""
	}
	for _, h := range env.homeConfigs() {
		if env.osPath(h) == file || h == file {
			return h
		}
	}
	return ""
}
