package steps

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// installKey runs the key step on a fresh machine and returns the key path.
func installKey(t *testing.T, m *testMachine) string {
	t.Helper()
	if r := m.check("key"); r.Status != plan.NeedsApply {
		t.Fatalf("fresh machine: key check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	if err := m.apply("key"); err != nil {
		t.Fatalf("apply key: %v", err)
	}
	return m.env.Paths.Key(m.env.Name)
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// pubFields returns "type base64" of an authorized_keys line.
func pubFields(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}

func TestKeyFresh(t *testing.T) {
	keygen := testenv.LookPath(t, "ssh-keygen")
	m := newMachine(t, "linux")
	r := m.check("key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	if len(r.Changes) != 2 {
		t.Errorf("changes = %d, want the key and its .pub: %+v", len(r.Changes), r.Changes)
	}
	m.noWrites()
	if err := m.apply("key"); err != nil {
		t.Fatal(err)
	}
	path := m.env.Paths.Key(m.env.Name)
	if got := modeOf(t, path); got != 0o600 {
		t.Errorf("key mode %04o, want 0600", got)
	}
	if got := modeOf(t, path+".pub"); got != 0o644 {
		t.Errorf(".pub mode %04o, want 0644", got)
	}
	out, err := exec.Command(keygen, "-y", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y cannot read our key: %v: %s", err, out)
	}
	pub := m.read(path + ".pub")
	if pubFields(string(out)) != pubFields(pub) {
		t.Errorf("ssh-keygen -y gives %q, .pub holds %q", out, pub)
	}
	if !strings.HasPrefix(pub, "ssh-ed25519 ") {
		t.Errorf(".pub %q is not an ed25519 key", pub)
	}
	r = m.check("key")
	if r.Status != plan.OK {
		t.Fatalf("re-check = %v %q, want ok", r.Status, r.Detail)
	}
	k, ok := Fact[ssh.PublicKey](m.env.Facts, factKeyPublic)
	if !ok || pubFields(string(ssh.MarshalAuthorizedKey(k))) != pubFields(pub) {
		t.Errorf("fact %s = %v, want the .pub key", factKeyPublic, k)
	}
}

func TestKeyAlreadyCorrectWritesNothing(t *testing.T) {
	m := newMachine(t, "linux")
	installKey(t, m)
	before := snapshot(t, m.env.Paths.EtcNix)
	m.files.reset()
	if r := m.check("key"); r.Status != plan.OK {
		t.Fatalf("check = %v %q, want ok", r.Status, r.Detail)
	}
	sum, _ := m.runSteps(plan.Setup, "key")
	if sum.Results["key"].Status != plan.OK || len(sum.Applied) != 0 {
		t.Errorf("setup on a healthy key: %+v", sum)
	}
	m.noWrites()
	sameSnapshot(t, before, snapshot(t, m.env.Paths.EtcNix))
}

func TestKeyWrongMode(t *testing.T) {
	m := newMachine(t, "linux")
	path := installKey(t, m)
	priv, pub := m.read(path), m.read(path+".pub")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r := m.check("key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "0644")
	sum, _ := m.runSteps(plan.Setup, "key")
	if got := sum.Results["key"].Status; got != plan.Applied {
		t.Fatalf("setup: key %v %q, want applied", got, sum.Results["key"].Detail)
	}
	if got := modeOf(t, path); got != 0o600 {
		t.Errorf("mode after apply %04o, want 0600", got)
	}
	if m.read(path) != priv {
		t.Error("the private key changed; only its mode should have")
	}
	if m.read(path+".pub") != pub {
		t.Error("the .pub changed; only the key's mode should have")
	}
}

func TestKeyPubMismatch(t *testing.T) {
	m := newMachine(t, "linux")
	path := installKey(t, m)
	priv := m.read(path)
	other, _ := newHostKey(t)
	m.write(path+".pub", string(sshkeys.PublicLine(other, "someone else")), 0o644)

	r := m.check("key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "another key")
	var pubChange bool
	for _, c := range r.Changes {
		if c.Path == path+".pub" && strings.Contains(c.Diff, "someone else") {
			pubChange = true
		}
		if c.Path == path {
			t.Errorf("a .pub mismatch must not touch the private key: %+v", c)
		}
	}
	if !pubChange {
		t.Errorf("no diff of the .pub among the changes: %+v", r.Changes)
	}
	if err := m.apply("key"); err != nil {
		t.Fatal(err)
	}
	if m.read(path) != priv {
		t.Error("the private key changed; only the .pub should have")
	}
	if r := m.check("key"); r.Status != plan.OK {
		t.Errorf("re-check = %v %q, want ok", r.Status, r.Detail)
	}
}

func TestKeyPassphraseIdentityBlocked(t *testing.T) {
	keygen := testenv.LookPath(t, "ssh-keygen")
	m := newMachine(t, "linux")
	id := m.path("/home/user/.ssh/id_ed25519")
	if err := os.MkdirAll(m.path("/home/user/.ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "secret", "-C", "me", "-f", id).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	priv := m.read(id)
	m.env.Identity = id
	sum, _ := m.runSteps(plan.Setup, "key")
	r := sum.Results["key"]
	if r.Status != plan.Blocked {
		t.Fatalf("key = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "passphrase")
	contains(t, "detail", r.Detail, id)
	if m.read(id) != priv {
		t.Error("the user's key was changed")
	}
	m.noWrites()
}

func TestKeyMissingIdentityBlocked(t *testing.T) {
	m := newMachine(t, "linux")
	m.env.Identity = m.path("/home/user/.ssh/nope")
	r := m.check("key")
	if r.Status != plan.Blocked {
		t.Fatalf("key = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "--identity")
}

// A key made by hand with ssh-keygen (the manual procedure) whose only
// problem is its mode: Apply fixes the mode and changes nothing Check did
// not announce — the .pub keeps the user's comment.
func TestKeyWrongModeKeepsHandMadePub(t *testing.T) {
	keygen := testenv.LookPath(t, "ssh-keygen")
	m := newMachine(t, "linux")
	path := m.env.Paths.Key(m.env.Name)
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "made by hand", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	pub := m.read(path + ".pub")
	r := m.check("key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("check = %v %q, want needs-apply", r.Status, r.Detail)
	}
	for _, c := range r.Changes {
		if c.Path == path+".pub" {
			t.Fatalf("check announces a change of the .pub for a mode problem: %+v", c)
		}
	}
	if err := m.apply("key"); err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, path); got != 0o600 {
		t.Errorf("mode %04o, want 0600", got)
	}
	if got := m.read(path + ".pub"); got != pub {
		t.Errorf("Apply rewrote the .pub, which Check did not announce:\n%q\nwas\n%q", got, pub)
	}
}
