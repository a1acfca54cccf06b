package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// Fact keys written by the host-key step.
const (
	factHostKey = "hostkey.pinned" // ssh.PublicKey: the builder's host key, read through the Docker API
)

func pinnedHostKey(env *Env) (ssh.PublicKey, *plan.Result) {
	k, ok := Fact[ssh.PublicKey](env.Facts, factHostKey)
	if !ok {
		r := plan.Block("the builder's host key is not known yet", "fix the host-key step first")
		return nil, &r
	}
	return k, nil
}

func knownHostsStep(env *Env) plan.Step {
	return plan.Step{ID: "known-hosts", Title: "Known hosts", Needs: []string{"host-key"},
		Check: func(ctx context.Context) plan.Result {
			key, blocked := pinnedHostKey(env)
			if blocked != nil {
				return *blocked
			}
			var changes []plan.Change
			var found, warnings []string
			for _, path := range env.Paths.KnownHostsFiles() {
				cur, err := env.read(path)
				if err != nil {
					return readProblem(err)
				}
				rep, err := sshkeys.ReadKnownHosts(cur.Data, env.Alias())
				if err != nil {
					return plan.Fail(fmt.Sprintf("read %s: %v", path, err), "")
				}
				for _, m := range rep.Malformed {
					warnings = append(warnings, fmt.Sprintf("%s line %d is not a known_hosts line (kept as it is)", path, m.Line))
				}
				for _, h := range rep.Hashed {
					warnings = append(warnings, fmt.Sprintf("%s line %d is a hashed entry for %s; remove it with `ssh-keygen -R %s -f %s` if it is stale", path, h.Line, env.Alias(), env.Alias(), path))
				}
				stale := rep.Stale(key)
				if rep.Trusts(key) && len(stale) == 0 {
					continue
				}
				want, err := sshkeys.UpsertKnownHost(cur.Data, env.Alias(), key)
				if err != nil {
					return plan.Fail(fmt.Sprintf("edit %s: %v", path, err), "")
				}
				if len(stale) > 0 {
					var fps []string
					for _, s := range stale {
						fps = append(fps, sshkeys.Fingerprint(s.Key))
					}
					found = append(found, fmt.Sprintf("%s trusts %s for %s, but the builder's key is %s", path, strings.Join(fps, ", "), env.Alias(), sshkeys.Fingerprint(key)))
				} else {
					found = append(found, fmt.Sprintf("%s does not trust %s", path, env.Alias()))
				}
				changes = append(changes, cur.change(want))
			}
			if len(changes) > 0 {
				r := plan.Need(strings.Join(found, "; "), changes...)
				r.Warning = strings.Join(warnings, "; ")
				return r
			}
			r := plan.Okf("%s trusted as %s by %s", env.Alias(), sshkeys.Fingerprint(key), strings.Join(env.Paths.KnownHostsFiles(), " and "))
			r.Warning = strings.Join(warnings, "; ")
			return r
		},
		Apply: func(ctx context.Context) error {
			key, blocked := pinnedHostKey(env)
			if blocked != nil {
				return fmt.Errorf("%s", blocked.Detail)
			}
			for i, path := range env.Paths.KnownHostsFiles() {
				cur, err := env.read(path)
				if err != nil {
					return err
				}
				want, err := sshkeys.UpsertKnownHost(cur.Data, env.Alias(), key)
				if err != nil {
					return fmt.Errorf("edit %s: %w", path, err)
				}
				if string(want) == string(cur.Data) {
					continue
				}
				uid, gid := env.rootUID(), rootGID(env)
				if i > 0 { // the user's file belongs to the user
					uid, gid = ownerOf(env.Paths.UserHome)
				}
				dir := filepath.Dir(path)
				if err := env.Files.MkdirAll(dir, 0o700); err != nil {
					return err
				}
				if err := env.Files.WriteFile(path, want, host.WriteOptions{Mode: 0o600, UID: uid, GID: gid,
					Backup: len(mustRemoveKnownHost(cur.Data, env.Alias())) > 0}); err != nil {
					return err
				}
			}
			return nil
		}}
}

// ownerOf returns the owner of path, or the current user's when it cannot
// be read.
func ownerOf(path string) (int, int) {
	info, err := host.LocalFiles{}.Stat(path)
	if err != nil || !info.Exists || info.UID < 0 {
		return os.Geteuid(), os.Getegid()
	}
	return info.UID, info.GID
}

// mustRemoveKnownHost is the file without our lines, or the file itself
// when it cannot be edited. A file with nothing else in it is ours: it
// gets no backup, and uninstall removes it.
func mustRemoveKnownHost(data []byte, host string) []byte {
	out, err := sshkeys.RemoveKnownHost(data, host)
	if err != nil {
		return data
	}
	return out
}
