package steps

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

// nixEnv is the environment for nix commands that reach the builder. On a
// re-rooted test machine it points Nix and OpenSSH at the rooted files.
// sshOpts are added to the ssh options Nix passes.
func (env *Env) nixEnv(sshOpts ...string) []string {
	var out []string
	if env.Paths.Root != "/" || env.Paths.NixConfDir != "/etc/nix" {
		out = append(out, "NIX_CONF_DIR="+env.Paths.NixConfDir)
	}
	if opts := strings.TrimSpace(strings.Join(append([]string{nixSSHOpts(env)}, sshOpts...), " ")); opts != "" {
		out = append(out, "NIX_SSHOPTS="+opts)
	}
	return out
}

// nixSSHOpts are the ssh options Nix must pass: on a re-rooted test
// machine, our alias file and root's known_hosts there.
func nixSSHOpts(env *Env) string {
	if env.Paths.Root == "/" {
		return os.Getenv("NIX_SSHOPTS")
	}
	return "-F " + env.Paths.AliasFile(env.Name) + " -o UserKnownHostsFile=" + env.Paths.RootKnownHosts()
}

func remoteStoreStep(env *Env) plan.Step {
	return plan.Step{ID: "remote-store", Title: "Remote store",
		Needs: []string{"nix"},
		// Independent of the others' findings, so doctor runs it from the
		// start; but it is stale once any of them changes.
		After: []string{"container", "authorized-key", "ssh-config", "known-hosts", "machines", "nix-conf", "daemon"},
		Check: func(ctx context.Context) plan.Result {
			info, _, blocked := nixInfo(env)
			if blocked != nil {
				return *blocked
			}
			args := append([]string{env.Nix}, info.StoreInfoArgs(env.StoreURI())...)
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			start := time.Now()
			// As root: the daemon's identity, with root's known_hosts and key.
			// A port that accepts but never speaks SSH must not hang the check.
			_, err := env.Run.Run(ctx, host.Cmd{Args: args, Env: env.nixEnv("-o", "ConnectTimeout=15"), Root: true})
			if err != nil {
				detail, hint := translateSSHError(err.Error(), env)
				return plan.Fail(detail, hint)
			}
			return plan.Okf("root opens %s in %s", env.StoreURI(), time.Since(start).Round(time.Millisecond))
		}}
}

// translateSSHError turns the common ssh and Nix failures into what the
// user can do about them (field-notes.md, "Failure modes").
func translateSSHError(msg string, env *Env) (string, string) {
	m := strings.ToLower(msg)
	first := msg
	if i := strings.Index(first, "\n"); i > 0 {
		first = first[:i]
	}
	switch {
	case strings.Contains(m, "host key verification failed") || strings.Contains(m, "remote host identification has changed"):
		return "root's ssh does not trust the builder's host key: " + first, "nixbuilder-setup repair (re-pins the host key from the builder)"
	case strings.Contains(m, "permission denied (publickey"):
		return "the builder refuses root's key: " + first, "nixbuilder-setup repair (re-installs the key in the builder); a passphrase-protected key cannot work for the daemon"
	case strings.Contains(m, "connection refused"):
		return "nothing answers on 127.0.0.1:" + env.PortString() + ": " + first, "the builder container is down or on another port: nixbuilder-setup repair"
	case strings.Contains(m, "could not resolve hostname"):
		return "ssh cannot resolve " + env.Alias() + ": " + first, "the ssh alias is not in effect: check /etc/ssh/ssh_config includes ssh_config.d, then nixbuilder-setup repair"
	case strings.Contains(m, "command not found") || strings.Contains(m, "no such file or directory") && strings.Contains(m, "nix-"):
		return "the builder's non-interactive PATH lacks nix-daemon/nix-store: " + first, "rebuild the builder image (the builder context must put Nix on the PATH of ssh sessions)"
	case strings.Contains(m, "protocol mismatch") || strings.Contains(m, "unexpected end-of-file") || strings.Contains(m, "not a nix daemon") || strings.Contains(m, "got unexpected"):
		return "the builder's ssh session is not clean: " + first, "something prints on stdout in non-interactive ssh sessions on the builder (motd, shell rc): the builder must print nothing"
	case strings.Contains(m, "timed out") || strings.Contains(m, "deadline exceeded"):
		return "the builder did not answer in time: " + first, "check the builder with `docker logs " + env.Name + "`"
	}
	return first, "run `nixbuilder-setup doctor` and check `docker logs " + env.Name + "`"
}
