package sshkeys

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
	"golang.org/x/crypto/ssh"
)

var rootFacts = FileFacts{Mode: 0o600, UID: 0}

func TestGenerateAndInspectKey(t *testing.T) {
	kp, err := GenerateKey(KeyComment("nixbuilder"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(kp.Private, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("private key not in OpenSSH format: %.40q", kp.Private)
	}
	if !bytes.HasSuffix(kp.Public, []byte(" nixbuilder-setup nixbuilder\n")) || !bytes.HasPrefix(kp.Public, []byte("ssh-ed25519 AAAA")) {
		t.Errorf("pub line %q", kp.Public)
	}
	r := InspectKey(kp.Private, kp.Public, rootFacts)
	if !r.OK() || r.Type != ssh.KeyAlgoED25519 || r.Encrypted || !r.PubMatches || r.Fingerprint != Fingerprint(kp.Key) {
		t.Errorf("fresh key: %+v", r)
	}

	other, _ := GenerateKey("x")
	cases := []struct {
		name  string
		priv  []byte
		pub   []byte
		facts FileFacts
		want  []ProblemKind
	}{
		{"wrong pub", kp.Private, other.Public, rootFacts, []ProblemKind{ProblemPubMismatch}},
		{"no pub", kp.Private, nil, rootFacts, []ProblemKind{ProblemPubMissing}},
		{"garbage pub", kp.Private, []byte("nope\n"), rootFacts, []ProblemKind{ProblemPubBad}},
		{"garbage private", []byte("nope"), kp.Public, rootFacts, []ProblemKind{ProblemUnreadable}},
		{"user owned, 0644", kp.Private, kp.Public, FileFacts{Mode: 0o644, UID: 501}, []ProblemKind{ProblemOwner, ProblemMode}},
		{"symlink", kp.Private, kp.Public, FileFacts{Mode: 0o600, IsSymlink: true}, []ProblemKind{ProblemSymlink}},
	}
	for _, tc := range cases {
		r := InspectKey(tc.priv, tc.pub, tc.facts)
		if len(r.Problems) != len(tc.want) {
			t.Errorf("%s: problems %+v, want %v", tc.name, r.Problems, tc.want)
			continue
		}
		for _, k := range tc.want {
			if !r.Has(k) {
				t.Errorf("%s: missing %s in %+v", tc.name, k, r.Problems)
			}
		}
	}
	r = InspectKey(kp.Private, kp.Public, FileFacts{Mode: 0o644, UID: 501})
	for _, p := range r.Problems {
		if p.Kind == ProblemMode && !strings.Contains(p.Detail, "0600") || p.Kind == ProblemOwner && !strings.Contains(p.Detail, "root") {
			t.Errorf("problem does not say what is expected: %+v", p)
		}
	}
}

func TestFactsFromFileInfo(t *testing.T) {
	f := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(f, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f, f+".link"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(f)
	if got := FactsFromFileInfo(fi); got.Mode != 0o640 || got.UID != os.Getuid() || got.IsSymlink {
		t.Errorf("facts %+v", got)
	}
	fi, _ = os.Lstat(f + ".link")
	if !FactsFromFileInfo(fi).IsSymlink {
		t.Error("symlink not seen")
	}
}

// TestKeyWithRealSSHKeygen checks our key against OpenSSH's own tools.
func TestKeyWithRealSSHKeygen(t *testing.T) {
	keygen := testenv.LookPath(t, "ssh-keygen")
	dir := t.TempDir()
	kp, err := GenerateKey(KeyComment("nixbuilder"))
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "nixbuilder_ed25519")
	if err := os.WriteFile(priv, kp.Private, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(priv+".pub", kp.Public, 0o644); err != nil {
		t.Fatal(err)
	}

	// ssh-keygen -y reads our private key and derives our .pub.
	out, err := exec.Command(keygen, "-y", "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v: %s", err, out)
	}
	if got, want := fields2(out), fields2(kp.Public); got != want {
		t.Errorf("ssh-keygen -y: %q, our .pub %q", got, want)
	}

	// ssh-keygen -l prints the same fingerprint as ours.
	out, err = exec.Command(keygen, "-l", "-f", priv+".pub").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v: %s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) < 2 || f[1] != Fingerprint(kp.Key) {
		t.Errorf("ssh-keygen -l: %q, ours %s", out, Fingerprint(kp.Key))
	}

	// A passphrase-protected key made by ssh-keygen is detected as such,
	// and its (clear) public half still matches its .pub.
	enc := filepath.Join(dir, "enc")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "secret", "-C", "", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -N secret: %v: %s", err, out)
	}
	encPriv, _ := os.ReadFile(enc)
	encPub, _ := os.ReadFile(enc + ".pub")
	r := InspectKey(encPriv, encPub, rootFacts)
	if !r.Encrypted || !r.Has(ProblemEncrypted) || !r.PubMatches || r.Type != ssh.KeyAlgoED25519 {
		t.Errorf("ssh-keygen -N secret key: %+v", r)
	}

	// And an unencrypted ssh-keygen key inspects clean.
	plain := filepath.Join(dir, "plain")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", plain).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pPriv, _ := os.ReadFile(plain)
	pPub, _ := os.ReadFile(plain + ".pub")
	if r := InspectKey(pPriv, pPub, rootFacts); !r.OK() {
		t.Errorf("ssh-keygen key: %+v", r.Problems)
	}
}

func fields2(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return string(b)
	}
	return f[0] + " " + f[1]
}
