package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// debianSSHConfig is the start of Debian's /etc/ssh/ssh_config.
const debianSSHConfig = "\n# This is the ssh client system-wide configuration file.  See\n# ssh_config(5) for more information.\n\nInclude /etc/ssh/ssh_config.d/*.conf\n\nHost *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n"

// sshMachine is a machine whose ssh_config includes ssh_config.d and
// whose `ssh` is the real OpenSSH client.
func sshMachine(t *testing.T) *testMachine {
	t.Helper()
	m := newMachine(t, "linux")
	m.env.SSH = testenv.LookPath(t, "ssh")
	m.write(m.env.Paths.SSHConfig, debianSSHConfig, 0o644)
	return m
}

func TestSSHConfigFresh(t *testing.T) {
	m := sshMachine(t)
	alias := m.env.Paths.AliasFile(m.env.Name)
	r := m.check("ssh-config")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	if len(r.Changes) != 1 || r.Changes[0].Path != alias || !strings.Contains(r.Changes[0].Diff, "+  HostKeyAlias nixbuilder") {
		t.Errorf("changes = %+v, want one diff creating %s", r.Changes, alias)
	}
	m.noWrites()
	sum, _ := m.runSteps(plan.Setup, "ssh-config")
	if got := sum.Results["ssh-config"]; got.Status != plan.Applied {
		t.Fatalf("setup: %v %q %q", got.Status, got.Detail, got.Hint)
	}
	want := string(sshkeys.RenderAlias(m.env.aliasConfig()))
	if got := m.read(alias); got != want {
		t.Errorf("alias file:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{"Host nixbuilder", "HostName 127.0.0.1", "Port 2222", "User root", "IdentitiesOnly yes", "HostKeyAlias nixbuilder"} {
		contains(t, "alias file", m.read(alias), line)
	}
	contains(t, "detail", sum.Results["ssh-config"].Detail, "127.0.0.1:2222")
}

func TestSSHConfigAlreadyCorrectWritesNothing(t *testing.T) {
	m := sshMachine(t)
	if err := m.apply("ssh-config"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m.path("/etc/ssh"))
	m.files.reset()
	r := m.check("ssh-config")
	if r.Status != plan.OK {
		t.Fatalf("check = %v %q %q, want ok", r.Status, r.Detail, r.Hint)
	}
	m.noWrites()
	sameSnapshot(t, before, snapshot(t, m.path("/etc/ssh")))
}

func TestSSHConfigHandEdited(t *testing.T) {
	m := sshMachine(t)
	if err := m.apply("ssh-config"); err != nil {
		t.Fatal(err)
	}
	alias := m.env.Paths.AliasFile(m.env.Name)
	edited := strings.Replace(m.read(alias), "  Port 2222\n", "  Port 2223\n  ForwardAgent yes\n", 1)
	m.write(alias, edited, 0o644)
	m.files.reset()

	r := m.check("ssh-config")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "differs")
	if len(r.Changes) != 1 {
		t.Fatalf("changes = %+v", r.Changes)
	}
	for _, l := range []string{"-  Port 2223", "-  ForwardAgent yes", "+  Port 2222"} {
		contains(t, "diff", r.Changes[0].Diff, l)
	}
	m.noWrites()
	if m.read(alias) != edited {
		t.Fatal("check changed the file")
	}
	if err := m.apply("ssh-config"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.read(alias), string(sshkeys.RenderAlias(m.env.aliasConfig())); got != want {
		t.Errorf("after apply:\n%s\nwant:\n%s", got, want)
	}
}

func TestSSHConfigWithoutInclude(t *testing.T) {
	m := sshMachine(t)
	// macOS before 12: no Include line.
	m.write(m.env.Paths.SSHConfig, "Host *\n  SendEnv LANG LC_*\n", 0o644)
	if err := m.apply("ssh-config"); err != nil {
		t.Fatal(err)
	}
	m.files.reset()
	r := m.check("ssh-config")
	if r.Status != plan.Blocked {
		t.Fatalf("check = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "Include /etc/ssh/ssh_config.d/*")
	contains(t, "hint", r.Hint, m.env.Paths.SSHConfig)
	m.noWrites()
}

// knownHostsMachine is a machine with the builder's host key pinned.
func knownHostsMachine(t *testing.T) (*testMachine, ssh.PublicKey) {
	t.Helper()
	m := newMachine(t, "linux")
	key, _ := newHostKey(t)
	m.env.Facts.Set(factHostKey, key)
	return m, key
}

// trustedLine is our known_hosts line for key.
func trustedLine(key ssh.PublicKey) string {
	return "nixbuilder " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func TestKnownHostsFresh(t *testing.T) {
	m, key := knownHostsMachine(t)
	files := m.env.Paths.KnownHostsFiles()
	if len(files) != 2 {
		t.Fatalf("known_hosts files = %q, want root's and the user's", files)
	}
	r := m.check("known-hosts")
	if r.Status != plan.NeedsApply || len(r.Changes) != 2 {
		t.Fatalf("check = %v %q with %d changes, want needs-apply for both files", r.Status, r.Detail, len(r.Changes))
	}
	m.noWrites()
	sum, _ := m.runSteps(plan.Setup, "known-hosts")
	if got := sum.Results["known-hosts"]; got.Status != plan.Applied {
		t.Fatalf("setup: %v %q", got.Status, got.Detail)
	}
	for _, f := range files {
		contains(t, f, m.read(f), trustedLine(key))
		if got := modeOf(t, f); got != 0o600 {
			t.Errorf("%s mode %04o, want 0600", f, got)
		}
	}
}

func TestKnownHostsAlreadyCorrectWritesNothing(t *testing.T) {
	m, _ := knownHostsMachine(t)
	if err := m.apply("known-hosts"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m.env.Paths.Root)
	m.files.reset()
	if r := m.check("known-hosts"); r.Status != plan.OK {
		t.Fatalf("check = %v %q, want ok", r.Status, r.Detail)
	}
	sum, _ := m.runSteps(plan.Setup, "known-hosts")
	if len(sum.Applied) != 0 {
		t.Errorf("applied %q on a healthy machine", sum.Applied)
	}
	m.noWrites()
	sameSnapshot(t, before, snapshot(t, m.env.Paths.Root))
}

func TestKnownHostsStaleKey(t *testing.T) {
	for _, which := range []string{"root", "user"} {
		t.Run(which, func(t *testing.T) {
			m, key := knownHostsMachine(t)
			old, _ := newHostKey(t)
			other, _ := newHostKey(t)
			files := m.env.Paths.KnownHostsFiles()
			stale, fresh := files[0], files[1]
			if which == "user" {
				stale, fresh = fresh, stale
			}
			// The fresh file already trusts the key; the stale one holds
			// the builder's previous key among lines that are not ours.
			m.write(fresh, trustedLine(key)+"\n", 0o600)
			unrelated := []string{
				"# my hosts",
				"github.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))),
				"[localhost]:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))),
				"|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))),
				"@cert-authority *.example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))),
				"",
				"\tnot a known_hosts line",
			}
			content := unrelated[0] + "\n" + unrelated[1] + "\r\n" + trustedLine(old) + "\n" + strings.Join(unrelated[2:], "\n") + "\n"
			m.write(stale, content, 0o644)
			freshBytes := m.read(fresh)

			r := m.check("known-hosts")
			if r.Status != plan.NeedsApply {
				t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
			}
			contains(t, "detail", r.Detail, sshkeys.Fingerprint(old))
			contains(t, "detail", r.Detail, sshkeys.Fingerprint(key))
			contains(t, "detail", r.Detail, stale)
			if len(r.Changes) != 1 || r.Changes[0].Path != stale {
				t.Errorf("changes = %+v, want one, for %s", r.Changes, stale)
			}
			if err := m.apply("known-hosts"); err != nil {
				t.Fatal(err)
			}
			got := m.read(stale)
			if strings.Contains(got, trustedLine(old)) {
				t.Errorf("the stale key is still trusted:\n%s", got)
			}
			contains(t, stale, got, trustedLine(key))
			// Every line that is not ours is kept, byte for byte, in order.
			var kept []string
			for _, l := range strings.SplitAfter(got, "\n") {
				if !strings.HasPrefix(l, "nixbuilder ") && l != "" {
					kept = append(kept, l)
				}
			}
			var want []string
			for _, l := range strings.SplitAfter(content, "\n") {
				if !strings.HasPrefix(l, "nixbuilder ") && l != "" {
					want = append(want, l)
				}
			}
			if strings.Join(kept, "") != strings.Join(want, "") {
				t.Errorf("lines not ours changed:\n%q\nwant:\n%q", kept, want)
			}
			if m.read(fresh) != freshBytes {
				t.Errorf("%s trusted the key already and was changed", fresh)
			}
			if r := m.check("known-hosts"); r.Status != plan.OK {
				t.Errorf("re-check = %v %q", r.Status, r.Detail)
			}
			if _, err := os.Stat(stale + ".before-nixbuilder"); err != nil {
				t.Errorf("no backup of the original %s: %v", stale, err)
			}
		})
	}
}

func TestKnownHostsWithoutPinnedKeyBlocked(t *testing.T) {
	m := newMachine(t, "linux")
	r := m.check("known-hosts")
	if r.Status != plan.Blocked {
		t.Fatalf("check = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "host-key")
	if _, err := os.Stat(filepath.Join(m.env.Paths.RootHome, ".ssh")); err == nil {
		t.Error("created root's .ssh without a key to pin")
	}
}
