package steps

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
)

// Fact keys written by the key step.
const (
	factKeyPublic = "key.public" // ssh.PublicKey: the key the builder must accept
)

// keyPath is the private key the daemon uses.
func (env *Env) keyPath() string {
	if env.Identity != "" {
		return env.Identity
	}
	return env.Paths.Key(env.Name)
}

func keyStep(env *Env) plan.Step {
	return plan.Step{ID: "key", Title: "Builder key",
		Check: func(ctx context.Context) plan.Result {
			path := env.keyPath()
			priv, err := env.read(path)
			if err != nil {
				return readProblem(err)
			}
			if !priv.Info.Exists {
				if env.Identity != "" {
					return plan.Block(path+" does not exist", "pass an existing private key to --identity, or leave it out to use a dedicated key")
				}
				return plan.Need("no key at "+path, generateChanges(path)...)
			}
			pub, err := env.read(path + ".pub")
			if err != nil {
				return readProblem(err)
			}
			facts := sshkeys.FileFacts{Mode: priv.Info.Mode, UID: priv.Info.UID, IsSymlink: priv.Info.Symlink}
			if facts.UID == env.rootUID() {
				facts.UID = sshkeys.WantKeyUID
			}
			rep := sshkeys.InspectKey(priv.Data, pub.Data, facts)
			if rep.Key != nil {
				env.Facts.Set(factKeyPublic, rep.Key)
			}
			if rep.OK() {
				return plan.Okf("%s (%s, %s)", path, rep.Type, rep.Fingerprint)
			}
			var what []string
			for _, p := range rep.Problems {
				what = append(what, p.Detail)
			}
			detail := path + ": " + strings.Join(what, "; ")
			if env.Identity != "" {
				hint := "fix the key, or leave out --identity to use a dedicated key"
				if rep.Encrypted {
					hint = "the daemon runs as root with no ssh agent, so a passphrase-protected key cannot be used: leave out --identity to use a dedicated unencrypted key"
				}
				return plan.Block(detail, hint)
			}
			switch {
			case rep.Has(sshkeys.ProblemUnreadable) || rep.Has(sshkeys.ProblemEncrypted) || rep.Has(sshkeys.ProblemNotEd25519) || rep.Has(sshkeys.ProblemSymlink):
				r := plan.Need(detail+" — a new dedicated key replaces it", generateChanges(path)...)
				return r
			}
			var changes []plan.Change
			if rep.Has(sshkeys.ProblemOwner) || rep.Has(sshkeys.ProblemMode) {
				changes = append(changes, plan.Change{Kind: plan.ChangeFile, Path: path, Root: true,
					Summary: fmt.Sprintf("set %s to owner root, mode 0600 (now uid %d, mode %04o)", path, priv.Info.UID, priv.Info.Mode.Perm())})
			}
			if rep.Key != nil && (rep.Has(sshkeys.ProblemPubMissing) || rep.Has(sshkeys.ProblemPubBad) || rep.Has(sshkeys.ProblemPubMismatch)) {
				want := sshkeys.PublicLine(rep.Key, sshkeys.KeyComment(env.Name))
				changes = append(changes, pub.change(want))
			}
			if len(changes) == 0 {
				return plan.Fail(detail, "remove "+path+" and run setup again")
			}
			return plan.Need(detail, changes...)
		},
		Apply: func(ctx context.Context) error {
			path := env.keyPath()
			priv, err := env.read(path)
			if err != nil {
				return err
			}
			var key ssh.PublicKey
			if priv.Info.Exists && !priv.Info.Symlink {
				pub, _ := env.read(path + ".pub")
				rep := sshkeys.InspectKey(priv.Data, pub.Data, sshkeys.FileFacts{Mode: priv.Info.Mode, UID: priv.Info.UID})
				if !rep.Encrypted && rep.Key != nil && rep.Type == ssh.KeyAlgoED25519 {
					key = rep.Key
				}
			}
			if key == nil {
				kp, err := sshkeys.GenerateKey(sshkeys.KeyComment(env.Name))
				if err != nil {
					return err
				}
				if priv.Info.Symlink {
					if err := env.Files.Remove(path); err != nil {
						return err
					}
				}
				// The .pub first: a run killed in between leaves a key pair
				// the next check sees as mismatched, and regenerates.
				if err := env.write(path+".pub", kp.Public, 0o644, false); err != nil {
					return err
				}
				return env.Files.WriteFile(path, kp.Private, host.WriteOptions{Mode: 0o600, UID: env.rootUID(), GID: rootGID(env), Enforce: true})
			}
			if err := env.Files.WriteFile(path, priv.Data, host.WriteOptions{Mode: 0o600, UID: env.rootUID(), GID: rootGID(env), Enforce: true}); err != nil {
				return err
			}
			pub, _ := env.read(path + ".pub")
			if sshkeys.InspectKey(priv.Data, pub.Data, sshkeys.FileFacts{}).PubMatches {
				return nil // a matching .pub keeps its comment
			}
			return env.Files.WriteFile(path+".pub", sshkeys.PublicLine(key, sshkeys.KeyComment(env.Name)),
				host.WriteOptions{Mode: 0o644, UID: env.rootUID(), GID: rootGID(env), Enforce: true})
		}}
}

func generateChanges(path string) []plan.Change {
	return []plan.Change{
		{Kind: plan.ChangeFile, Path: path, Root: true, Summary: "create " + path + " (new ed25519 key, no passphrase, root-owned 0600)"},
		{Kind: plan.ChangeFile, Path: path + ".pub", Root: true, Summary: "create " + path + ".pub"},
	}
}
