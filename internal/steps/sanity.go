package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// MarkerPath is where a build on the builder finds the builder's marker:
// the builder's nix.conf maps it into every sandbox (extra-sandbox-paths),
// so only a build that ran on the builder can read it.
const MarkerPath = "/nixbuilder-marker"

// probeScript runs in the build sandbox, which has no coreutils: shell
// builtins only. It records the kernel, the sandbox hostname, and the marker.
const probeScript = `read o < /proc/sys/kernel/ostype; read h < /proc/sys/kernel/hostname; m=none; if [ -r ` + MarkerPath + ` ]; then read m < ` + MarkerPath + `; fi; echo "$o $h $m" > $out`

// ProbeExpr is a derivation for system that can only be built where
// builder is, named with nonce so that no cache has it.
func ProbeExpr(system, nonce string) string {
	return fmt.Sprintf(`derivation { name = "nixbuilder-probe-%s-%s"; system = %q; builder = "/bin/sh"; args = [ "-c" %q ]; }`,
		system, nonce, system, probeScript)
}

func nonce() string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%d-%s", time.Now().Unix(), hex.EncodeToString(b))
}

// ProbeResult is what one probe build showed.
type ProbeResult struct {
	System   string
	Output   string // "Linux localhost <marker>"
	OnRemote bool   // Nix logged that it built on our builder
	Took     time.Duration
}

// runProbe builds a fresh probe derivation for system with --max-jobs 0,
// so it can only succeed on a remote builder, through the daemon (not
// NIX_REMOTE), and reads what it wrote.
func runProbe(ctx context.Context, env *Env, system string) (ProbeResult, error) {
	res := ProbeResult{System: system}
	start := time.Now()
	// The probe is new by construction: asking a binary cache for it only
	// costs time (and retries, offline).
	args := []string{"nix-build", "--no-out-link", "--max-jobs", "0", "--option", "substitute", "false",
		"-E", ProbeExpr(system, nonce())}
	var stderr bytes.Buffer
	stdout, err := env.Run.Run(ctx, host.Cmd{Args: args, Env: env.nixEnv(), Stderr: &stderr})
	res.Took = time.Since(start)
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l != "" {
			plan.Log(ctx, l)
		}
	}
	if err != nil {
		return res, err
	}
	out := strings.TrimSpace(string(stdout))
	if i := strings.LastIndex(out, "\n"); i >= 0 {
		out = out[i+1:]
	}
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		return res, fmt.Errorf("read the probe's output %s: %w", out, rerr)
	}
	res.Output = strings.TrimSpace(string(data))
	on := regexp.MustCompile(`building '[^']*' on '` + regexp.QuoteMeta(env.StoreURI()) + `'`)
	res.OnRemote = on.Match(stderr.Bytes())
	return res, nil
}

func sanityStep(env *Env) plan.Step {
	return plan.Step{ID: "sanity", Title: "Remote build", Needs: []string{"remote-store", "machines"},
		Check: func(ctx context.Context) plan.Result {
			if env.Sanity == "none" {
				return plan.Skip("--sanity none")
			}
			m, blocked := env.machine()
			if blocked != nil {
				return *blocked
			}
			var parts []string
			var warning string
			if env.Sanity != "hello" {
				marker, merr := env.builderMarker(ctx)
				for _, sys := range m.Systems {
					pr, err := runProbe(ctx, env, sys)
					if err != nil {
						detail, hint := translateSSHError(err.Error(), env)
						return plan.Fail("probe build for "+sys+" failed: "+detail, hint)
					}
					fields := strings.Fields(pr.Output)
					switch {
					case len(fields) < 3 || fields[0] != "Linux":
						return plan.Fail(fmt.Sprintf("the %s probe did not run on Linux: it wrote %q", sys, pr.Output), "")
					case !pr.OnRemote:
						return plan.Fail("Nix did not log building the probe on "+env.StoreURI(), "")
					case merr == nil && fields[2] != marker:
						return plan.Fail(fmt.Sprintf("the %s probe ran somewhere without this builder's marker (wrote %q)", sys, pr.Output), "another builder took the build: check the other lines in the machines file")
					}
					parts = append(parts, fmt.Sprintf("%s probe built on %s in %s", sys, env.Name, pr.Took.Round(10*time.Millisecond)))
				}
				if merr != nil {
					warning = "could not read the builder's marker to compare: " + merr.Error()
				}
			}
			if env.Sanity != "probe" {
				took, err := buildHello(ctx, env)
				switch {
				case err == errNoNetwork:
					warning = strings.TrimPrefix(warning+"; nixpkgs#hello not tried: nixpkgs cannot be fetched (no network); the probe build stands", "; ")
				case err != nil:
					detail, hint := translateSSHError(err.Error(), env)
					return plan.Fail("nixpkgs#hello for x86_64-linux failed: "+detail, hint)
				default:
					parts = append(parts, fmt.Sprintf("nixpkgs#hello (x86_64-linux) built remotely in %s", took.Round(100*time.Millisecond)))
				}
			}
			if len(parts) == 0 {
				return plan.Skip(warning)
			}
			r := plan.Okf("%s", strings.Join(parts, "; "))
			r.Warning = warning
			return r
		}}
}

var errNoNetwork = fmt.Errorf("no network")

func buildHello(ctx context.Context, env *Env) (time.Duration, error) {
	info, _, blocked := nixInfo(env)
	if blocked != nil {
		return 0, fmt.Errorf("%s", blocked.Detail)
	}
	args := []string{env.Nix}
	if info.NeedsNixCommandFlag() {
		args = append(args, "--extra-experimental-features", "nix-command flakes")
	}
	args = append(args, "build", "--no-link", "--max-jobs", "0", "--system", "x86_64-linux", "nixpkgs#hello")
	start := time.Now()
	_, err := env.Run.Run(ctx, host.Cmd{Args: args, Env: env.nixEnv()})
	if err != nil {
		m := strings.ToLower(err.Error())
		for _, s := range []string{"could not resolve host", "unable to download", "couldn't resolve", "network is unreachable", "name or service not known", "temporary failure in name resolution"} {
			if strings.Contains(m, s) {
				return 0, errNoNetwork
			}
		}
		return 0, err
	}
	return time.Since(start), nil
}
