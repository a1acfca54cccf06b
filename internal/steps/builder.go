package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/assets"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// Fact keys written by the builder steps.
const (
	factImageRef  = "image.ref"  // string
	factImageHash = "image.hash" // string
)

// dockerProblem turns an engine error into a result the user can act on.
func dockerProblem(err error) plan.Result {
	var fe *docker.ForeignError
	if errors.As(err, &fe) {
		return plan.Block(err.Error(), "pass --name to use another name, or remove that container yourself")
	}
	return plan.Block("Docker is not reachable: "+err.Error(), "start Docker (Docker Desktop, OrbStack, Colima or the docker service) and run again")
}

// startHint says how to start the engine behind an endpoint.
func startHint(ep docker.Endpoint) string {
	switch ep.Product {
	case docker.ProductDockerDesktop:
		return "start Docker Desktop (open -a Docker) and wait until it says it is running"
	case docker.ProductOrbStack:
		return "start OrbStack (open -a OrbStack)"
	case docker.ProductColima:
		return "colima start"
	case docker.ProductRancherDesktop:
		return "start Rancher Desktop"
	}
	return "start the Docker Engine (sudo systemctl start docker) or point DOCKER_HOST / `docker context use` at one"
}

func dockerStep(env *Env) plan.Step {
	return plan.Step{ID: "docker", Title: "Docker", Needs: []string{"host"},
		Check: func(ctx context.Context) plan.Result {
			c, err := env.Docker()
			if err != nil {
				return plan.Block("cannot find the Docker Engine: "+err.Error(), "install Docker Desktop (or OrbStack, Colima), or fix the docker context")
			}
			ep := c.Endpoint()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			info, err := c.ServerInfo(cctx)
			if err != nil {
				return plan.Block(fmt.Sprintf("%s at %s (%s) does not answer: %v", ep.Product, ep.Host, ep.Source, err), startHint(ep))
			}
			if info.OSType != "" && info.OSType != "linux" {
				return plan.Block("the engine runs "+info.OSType+" containers", "switch Docker to Linux containers")
			}
			detail := fmt.Sprintf("%s %s (%s/%s, %d CPUs, %.1f GiB) via %s", ep.Product, info.Version, info.OSType, info.Arch,
				info.CPUs, float64(info.MemoryBytes)/(1<<30), ep.Source)
			arm, _ := Fact[bool](env.Facts, factAppleSilicon)
			if env.GOOS == "darwin" && ep.Product == docker.ProductDockerDesktop && macos.RosettaNeeded(arm, env.Emulation) {
				s, err := macos.ReadDesktopSettings(env.Paths.UserHome, env.Files.ReadFile)
				if err != nil {
					return readProblem(err)
				}
				ev := macos.EvaluateDesktopRosetta(s)
				switch ev.Verdict {
				case macos.VerdictBlocked:
					return plan.Block(ev.Detail, ev.Hint+" (or run with --emulation qemu)")
				case macos.VerdictUnknown:
					r := plan.Okf("%s", detail)
					r.Warning = ev.Detail
					return r
				}
			}
			return plan.Okf("%s", detail)
		}}
}

// buildContext is the image's build context: --builder-context or the
// embedded one.
func (env *Env) buildContext() (docker.BuildContext, string, error) {
	var fsys fs.FS = assets.Context()
	where := "the embedded context"
	if env.BuilderContext != "" {
		fsys, where = docker.DirContext(env.BuilderContext), env.BuilderContext
	}
	args := map[string]string{}
	if env.BaseImage != "" {
		args["BASE_IMAGE"] = env.BaseImage
	}
	bc, err := docker.NewBuildContext(fsys, args)
	if err != nil {
		return bc, where, fmt.Errorf("read the build context %s: %w", where, err)
	}
	return bc, where, nil
}

func imageStep(env *Env) plan.Step {
	return plan.Step{ID: "image", Title: "Builder image", Needs: []string{"docker"},
		Check: func(ctx context.Context) plan.Result {
			c, err := env.Docker()
			if err != nil {
				return dockerProblem(err)
			}
			bc, where, err := env.buildContext()
			if err != nil {
				return plan.Fail(err.Error(), "pass a directory with a Dockerfile to --builder-context")
			}
			ref := docker.ImageRef(env.Name, bc.Hash)
			env.Facts.Set(factImageRef, ref)
			env.Facts.Set(factImageHash, bc.Hash)
			present, err := docker.ImageStatus(ctx, c, env.Name, bc)
			if err != nil {
				return dockerProblem(err)
			}
			if present {
				return plan.Okf("%s (from %s)", ref, where)
			}
			return plan.Need("no image "+ref, plan.Change{Kind: plan.ChangeContainer, Summary: fmt.Sprintf("build image %s from %s", ref, where)})
		},
		Apply: func(ctx context.Context) error {
			c, err := env.Docker()
			if err != nil {
				return err
			}
			bc, _, err := env.buildContext()
			if err != nil {
				return err
			}
			_, _, err = docker.EnsureImage(ctx, c, env.Name, bc, plan.LogFunc(ctx))
			return err
		}}
}

func (env *Env) containerSpec() (docker.ContainerSpec, *plan.Result) {
	ref, ok1 := Fact[string](env.Facts, factImageRef)
	hash, ok2 := Fact[string](env.Facts, factImageHash)
	if !ok1 || !ok2 {
		r := plan.Block("the builder image is not known yet", "fix the image step first")
		return docker.ContainerSpec{}, &r
	}
	return docker.ContainerSpec{Name: env.Name, Image: ref, AssetsHash: hash, Port: env.Port, Privilege: docker.PrivilegeFull}, nil
}

// keepRung keeps the last rung of the privilege ladder once a sandboxed
// build proved the sandbox cannot work in this engine: the builder was
// created without it on purpose, and re-creating it each run would not
// change the engine's mind. Removing the container starts over.
func keepRung(ctx context.Context, c docker.Client, spec *docker.ContainerSpec) {
	ct, err := c.InspectContainer(ctx, spec.Name)
	if err == nil && slices.Contains(ct.Env, docker.SandboxEnv+"=false") && ct.Labels[docker.LabelManaged] == "true" {
		spec.Privilege = docker.PrivilegeNoSandbox
	}
}

// factsCache keeps what the builder can run in its state volume, so that
// checks read one small file instead of running commands in the container
// (each a round trip through the engine). It names the container it was
// measured in: a re-created container is measured again.
const factsCache = docker.StateDir + "/facts.json"

type cachedFacts struct {
	Container string       `json:"container"`
	Facts     docker.Facts `json:"facts"`
}

// measureFacts runs the commands that find the builder's facts and keeps
// them for later checks; only Apply calls it, since checks change nothing.
func (env *Env) measureFacts(ctx context.Context, c docker.Client) error {
	ct, err := c.InspectContainer(ctx, env.Name)
	if err != nil {
		return err
	}
	f, err := docker.BuilderFacts(ctx, c, env.Name)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cachedFacts{Container: ct.ID, Facts: f})
	if err != nil {
		return err
	}
	return c.WriteFile(ctx, env.Name, factsCache, append(b, '\n'), 0o644)
}

// recordFacts reads what the machines line needs from the running builder:
// from the cache when it was measured in this container, else by running
// the commands.
func (env *Env) recordFacts(ctx context.Context, c docker.Client, ct docker.Container) error {
	var f docker.Facts
	var cached cachedFacts
	if b, err := c.ReadFile(ctx, env.Name, factsCache); err == nil && json.Unmarshal(b, &cached) == nil && cached.Container == ct.ID && cached.Facts.System != "" {
		f = cached.Facts
	} else if f, err = docker.BuilderFacts(ctx, c, env.Name); err != nil {
		return err
	}
	env.Facts.Set(factBuilderSystems, f.Systems())
	env.Facts.Set(factBuilderCPUs, f.CPUs)
	features := []string{"benchmark", "big-parallel"}
	if f.KVM {
		features = append(features, "kvm")
	}
	env.Facts.Set(factBuilderFeatures, features)
	return nil
}

func privilegeWarning(p docker.Privilege) string {
	switch p {
	case docker.PrivilegeCaps:
		return "the engine refuses privileged containers: the builder runs with SYS_ADMIN and unconfined seccomp/AppArmor/system paths, which keeps the Nix sandbox working"
	case docker.PrivilegeNoSandbox:
		return "the engine allows neither privileged containers nor SYS_ADMIN: the builder runs with the Nix sandbox OFF, so builds are not isolated"
	}
	return ""
}

func containerStep(env *Env) plan.Step {
	return plan.Step{ID: "container", Title: "Builder container", Needs: []string{"image"},
		Check: func(ctx context.Context) plan.Result {
			c, err := env.Docker()
			if err != nil {
				return dockerProblem(err)
			}
			spec, blocked := env.containerSpec()
			if blocked != nil {
				return *blocked
			}
			keepRung(ctx, c, &spec)
			ct, drifts, err := docker.CheckContainer(ctx, c, spec)
			if err != nil {
				return dockerProblem(err)
			}
			if ct.Running {
				// What the builder runs does not depend on how it drifted;
				// later checks (the machines line) still get to look.
				if err := env.recordFacts(ctx, c, ct); err != nil && len(drifts) == 0 {
					return plan.Fail("read the builder's facts: "+err.Error(), "")
				}
			}
			if len(drifts) == 0 {
				systems, _ := Fact[[]string](env.Facts, factBuilderSystems)
				r := plan.Okf("%s running, 127.0.0.1:%d → 22, runs %s", env.Name, env.Port, strings.Join(systems, ","))
				r.Warning = privilegeWarning(docker.ContainerPrivilege(ct))
				if v, err := c.InspectVolume(ctx, spec.NixVolume()); err == nil && v.Labels[docker.LabelSeededFrom] != "" && v.Labels[docker.LabelSeededFrom] != spec.AssetsHash {
					r.Warning = strings.TrimPrefix(r.Warning+"; the store volume "+spec.NixVolume()+" was seeded from an older image and is kept (remove it with `nixbuilder-setup uninstall` to start fresh)", "; ")
				}
				return r
			}
			reasons := docker.Reasons(drifts)
			// A port held by someone else is the user's to resolve.
			if !portOurs(ct, env.Port) {
				holder, err := docker.FindPortHolder(ctx, c, env.Port)
				if err == nil && !holder.Free() && holder.Container != env.Name {
					return plan.Block(fmt.Sprintf("port %d on 127.0.0.1 is taken by %s", env.Port, holder),
						fmt.Sprintf("free it, or choose another port: nixbuilder-setup setup --port %d", env.Port+1))
				}
			}
			return plan.Need(strings.Join(reasons, "; "), plan.Change{Kind: plan.ChangeContainer,
				Summary: fmt.Sprintf("create or update container %s from %s (127.0.0.1:%d → 22, restart unless-stopped, volumes %s and %s)",
					env.Name, spec.Image, env.Port, spec.StateVolume(), spec.NixVolume())})
		},
		Apply: func(ctx context.Context) error {
			c, err := env.Docker()
			if err != nil {
				return err
			}
			spec, blocked := env.containerSpec()
			if blocked != nil {
				return errors.New(blocked.Detail)
			}
			keepRung(ctx, c, &spec)
			p, err := docker.Reconcile(ctx, c, spec)
			if err != nil {
				return err
			}
			// The entrypoint creates the host key on first start; wait for
			// it so the next steps find it.
			hostKey := func() error {
				return waitFor(ctx, 30*time.Second, func() error {
					_, err := c.ReadFile(ctx, env.Name, docker.HostPublicKeyPath)
					return err
				})
			}
			if err := hostKey(); err != nil {
				return err
			}
			// Each rung of the privilege ladder is proven by a sandboxed
			// build; only when the sandbox cannot work at all does the
			// builder go without it, and says so.
			if p == docker.PrivilegeNoSandbox {
				plan.Log(ctx, "warning: "+privilegeWarning(p))
				return env.measureFacts(ctx, c)
			}
			if err := proveSandbox(ctx, c, env.Name); err != nil {
				plan.Log(ctx, "the Nix sandbox does not work in the container: "+err.Error())
				spec.Privilege = docker.PrivilegeNoSandbox
				if _, err := docker.Reconcile(ctx, c, spec); err != nil {
					return err
				}
				plan.Log(ctx, "warning: "+privilegeWarning(docker.PrivilegeNoSandbox))
				if err := hostKey(); err != nil {
					return err
				}
				return env.measureFacts(ctx, c)
			}
			if w := privilegeWarning(p); w != "" {
				plan.Log(ctx, "warning: "+w)
			}
			return env.measureFacts(ctx, c)
		}}
}

func portOurs(ct docker.Container, port int) bool {
	for _, b := range ct.Ports {
		if b.HostPort == strconv.Itoa(port) {
			return true
		}
	}
	return false
}

func waitFor(ctx context.Context, d time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", d, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func authorizedKeyStep(env *Env) plan.Step {
	want := func() ([]byte, error) {
		k, ok := Fact[ssh.PublicKey](env.Facts, factKeyPublic)
		if !ok {
			return nil, errors.New("the builder key is not known yet; fix the key step first")
		}
		return sshkeys.PublicLine(k, sshkeys.KeyComment(env.Name)), nil
	}
	return plan.Step{ID: "authorized-key", Title: "Authorized key", Needs: []string{"key"}, After: []string{"container"},
		Check: func(ctx context.Context) plan.Result {
			line, err := want()
			if err != nil {
				return plan.Block(err.Error(), "")
			}
			c, err := env.Docker()
			if err != nil {
				return dockerProblem(err)
			}
			got, err := c.ReadFile(ctx, env.Name, docker.AuthorizedKeysPath)
			if err != nil && !errors.Is(err, docker.ErrNotFound) {
				return dockerProblem(err)
			}
			if bytes.Equal(got, line) {
				return plan.Okf("the builder accepts exactly %s", env.keyPath()+".pub")
			}
			detail := "the builder does not accept our key"
			if len(bytes.TrimSpace(got)) > 0 {
				detail = "the builder's authorized_keys holds other keys than ours"
			}
			return plan.Need(detail, plan.Change{Kind: plan.ChangeContainer,
				Summary: fmt.Sprintf("write %s (mode 0600) in %s with our public key only", docker.AuthorizedKeysPath, env.Name)})
		},
		Apply: func(ctx context.Context) error {
			line, err := want()
			if err != nil {
				return err
			}
			c, err := env.Docker()
			if err != nil {
				return err
			}
			return c.WriteFile(ctx, env.Name, docker.AuthorizedKeysPath, line, 0o600)
		}}
}

func hostKeyStep(env *Env) plan.Step {
	return plan.Step{ID: "host-key", Title: "Builder host key", After: []string{"container"},
		Check: func(ctx context.Context) plan.Result {
			c, err := env.Docker()
			if err != nil {
				return dockerProblem(err)
			}
			// Read through the Docker API: an authenticated channel, never
			// trust on first use over the network.
			pub, err := c.ReadFile(ctx, env.Name, docker.HostPublicKeyPath)
			if err != nil {
				return plan.Fail("read the builder's host key through the Docker API: "+err.Error(), "nixbuilder-setup repair (re-creates the container)")
			}
			key, err := sshkeys.ParseHostKey(pub)
			if err != nil {
				return plan.Fail("the builder's host key is not valid: "+err.Error(), "")
			}
			env.Facts.Set(factHostKey, key)
			addr := fmt.Sprintf("127.0.0.1:%d", env.Port)
			presented, err := sshkeys.HandshakeHostKey(ctx, addr, 10*time.Second)
			if err != nil {
				return plan.Fail(fmt.Sprintf("the builder's sshd does not answer on %s: %v", addr, err), "check `docker logs "+env.Name+"`, then nixbuilder-setup repair")
			}
			if err := sshkeys.CrossCheck(key, presented); err != nil {
				return plan.Fail(err.Error(), "something else answers on "+addr+": find it (lsof -i :"+env.PortString()+") before trusting anything")
			}
			return plan.Okf("%s (read through the Docker API, matches the key sshd presents)", sshkeys.Fingerprint(key))
		}}
}

// builderMarker reads the builder's marker through the Docker API.
func (env *Env) builderMarker(ctx context.Context) (string, error) {
	c, err := env.Docker()
	if err != nil {
		return "", err
	}
	b, err := c.ReadFile(ctx, env.Name, docker.MarkerFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// proveSandbox builds a fresh probe derivation inside the builder, with
// the builder's own Nix (sandbox on, no fallback), and checks it ran in
// the sandbox: there the hostname is "localhost".
func proveSandbox(ctx context.Context, c docker.Client, name string) error {
	f, err := docker.BuilderFacts(ctx, c, name)
	if err != nil {
		return err
	}
	res, err := c.Exec(ctx, name, []string{"nix-build", "--no-out-link", "--option", "substitute", "false",
		"--option", "sandbox-fallback", "false", "-E", ProbeExpr(f.System, "sandbox-"+nonce())})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("sandboxed probe build failed: %s", lastLine(res.Stderr))
	}
	out := strings.TrimSpace(string(res.Stdout))
	got, err := c.ReadFile(ctx, name, out)
	if err != nil {
		return err
	}
	if fields := strings.Fields(string(got)); len(fields) < 2 || fields[1] != "localhost" {
		return fmt.Errorf("the probe did not run in the sandbox: it wrote %q", got)
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
