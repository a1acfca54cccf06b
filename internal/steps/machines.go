package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixversion"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// Fact keys written by the container step.
const (
	factBuilderSystems  = "builder.systems"  // []string: systems the builder really runs
	factBuilderCPUs     = "builder.cpus"     // int
	factBuilderFeatures = "builder.features" // []string: big-parallel, benchmark, and kvm only with /dev/kvm
)

// machine is our builder's machines line.
func (env *Env) machine() (nixconf.Machine, *plan.Result) {
	key, blocked := pinnedHostKey(env)
	if blocked != nil {
		return nixconf.Machine{}, blocked
	}
	systems := env.Systems
	if len(systems) == 0 {
		s, ok := Fact[[]string](env.Facts, factBuilderSystems)
		if !ok || len(s) == 0 {
			r := plan.Block("the systems the builder runs are not known yet", "fix the container step first")
			return nixconf.Machine{}, &r
		}
		systems = s
	}
	jobs := env.MaxJobs
	if jobs == 0 {
		jobs, _ = Fact[int](env.Facts, factBuilderCPUs)
		if jobs < 1 {
			jobs = 1
		}
	}
	features, ok := Fact[[]string](env.Facts, factBuilderFeatures)
	if !ok {
		features = []string{"benchmark", "big-parallel"}
	}
	return nixconf.Machine{
		URI:               env.StoreURI(),
		Systems:           systems,
		SSHKey:            env.osPath(env.keyPath()),
		MaxJobs:           jobs,
		SpeedFactor:       float64(env.SpeedFactor),
		SupportedFeatures: features,
		PublicHostKey:     sshkeys.EncodeMachinesHostKey(key),
	}, nil
}

// machinesFile is where our line goes: /etc/nix/machines, unless the
// user's builders setting points at another file.
func (env *Env) machinesFile() string {
	own, err := env.ownership()
	if err != nil || own.Blocked {
		return env.Paths.Machines()
	}
	cur, err := env.read(own.File)
	if err != nil {
		return env.Paths.Machines()
	}
	_, elsewhere, err := nixconf.NixConfBody(userBuilders(cur.Data, env.Name), env.osPath(env.Paths.Machines()))
	if err == nil && elsewhere != "" {
		if env.Paths.Root != "/" && filepath.IsAbs(elsewhere) {
			return filepath.Join(env.Paths.Root, elsewhere)
		}
		return elsewhere
	}
	return env.Paths.Machines()
}

// userBuilders is the builders value set in data outside our block.
func userBuilders(data []byte, name string) string {
	without, err := nixconf.RemoveManagedBlock(data, name)
	if err != nil {
		return ""
	}
	c, err := nixconf.Parse(without)
	if err != nil {
		return ""
	}
	v, _ := c.Get("builders")
	return v
}

func machinesStep(env *Env) plan.Step {
	return plan.Step{ID: "machines", Title: "Machines file", Needs: []string{"container", "host-key", "nix"}, After: []string{"key"},
		Check: func(ctx context.Context) plan.Result {
			m, blocked := env.machine()
			if blocked != nil {
				return *blocked
			}
			if own, err := env.ownership(); err == nil && own.Layout == nixconf.NixDarwin {
				// nix-darwin writes the machines file from nix.buildMachines
				// and refuses to replace a file it did not create.
				return plan.Block("nix-darwin manages the Nix configuration, machines file included",
					"add the builder to nix.buildMachines (the nix-conf step prints the snippet) and run `darwin-rebuild switch`")
			}
			path := env.machinesFile()
			cur, err := env.read(path)
			if err != nil {
				return readProblem(err)
			}
			if cur.Info.Symlink {
				return plan.Block(fmt.Sprintf("%s is a symlink to %s, managed elsewhere", path, cur.Info.Target),
					"add this line to the file your configuration generates: "+m.String())
			}
			want, err := nixconf.UpsertManagedBlock(cur.Data, env.Name, []byte(env.settingsLine()+m.String()+"\n"))
			if err != nil {
				return plan.Fail(fmt.Sprintf("%s: %v", path, err), "fix the nixbuilder-setup block markers in "+path+" by hand (they must come in BEGIN/END pairs)")
			}
			if bytes.Equal(want, cur.Data) {
				r := plan.Okf("%s: %s", path, strings.Join(m.Systems, ","))
				r.Warning = env.otherLinesFor(cur.Data)
				return r
			}
			body, found, _ := nixconf.ManagedBlock(cur.Data, env.Name)
			detail := "no line for " + env.Name + " in " + path
			if found {
				detail = fmt.Sprintf("the %s line in %s is out of date: %s", env.Name, path, strings.TrimSpace(string(body)))
			}
			return plan.Need(detail, cur.change(want))
		},
		Apply: func(ctx context.Context) error {
			m, blocked := env.machine()
			if blocked != nil {
				return errors.New(blocked.Detail)
			}
			path := env.machinesFile()
			cur, err := env.read(path)
			if err != nil {
				return err
			}
			want, err := nixconf.UpsertManagedBlock(cur.Data, env.Name, []byte(env.settingsLine()+m.String()+"\n"))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			// Have the real Nix read the new file before it replaces the old.
			if _, err := nixconf.ValidateMachines(ctx, env.Nix, want); err != nil {
				return fmt.Errorf("nix refuses the new %s, so it was not installed: %w", path, err)
			}
			return env.write(path, want, 0o644, env.isOriginal(cur.Data))
		}}
}

// otherLinesFor warns about lines outside our block that name our alias,
// which Nix would also use.
func (env *Env) otherLinesFor(data []byte) string {
	without, err := nixconf.RemoveManagedBlock(data, env.Name)
	if err != nil {
		return ""
	}
	ms, err := nixconf.ParseMachines(without)
	if err != nil {
		return ""
	}
	for _, m := range ms {
		host := m.URI
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[i+3:]
		}
		if i := strings.LastIndex(host, "@"); i >= 0 {
			host = host[i+1:]
		}
		if host == env.Name || strings.HasPrefix(host, "localhost:"+env.PortString()) || strings.HasPrefix(host, "127.0.0.1:"+env.PortString()) {
			return fmt.Sprintf("another line also names this builder (%s); Nix will try both — remove the old one", m.URI)
		}
		if info, ok := Fact[nixversion.Info](env.Facts, factNixInfo); ok && info.SSHNGPortBug() &&
			strings.HasPrefix(m.URI, "ssh-ng://") && strings.Contains(host, ":") {
			return fmt.Sprintf("%s cannot work with %s: a port in an ssh-ng:// URI is not understood before Nix 2.31 (nor on Lix); use an ssh alias with Port, as nixbuilder-setup does", m.URI, info)
		}
	}
	return ""
}
