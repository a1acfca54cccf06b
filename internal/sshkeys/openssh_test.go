package sshkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// sshServer is a real OpenSSH sshd on a loopback port, for the tests.
type sshServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// startSSHD starts sshd with hostKey (an OpenSSH private key file's bytes)
// that lets authorizedKey log in as the user running the test.
func startSSHD(t *testing.T, dir string, port int, hostKey, authorizedKey []byte) *sshServer {
	t.Helper()
	bin := testenv.LookPath(t, "sshd")
	// sshd insists on its privilege-separation directory when run as root.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		testenv.Missing(t, "cannot create /run/sshd: %v", err)
	}
	hk := filepath.Join(dir, "ssh_host_ed25519_key")
	ak := filepath.Join(dir, "authorized_keys")
	mustWrite(t, hk, hostKey, 0o600)
	mustWrite(t, ak, authorizedKey, 0o600)
	cfg := filepath.Join(dir, "sshd_config")
	mustWrite(t, cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
StrictModes no
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
PrintMotd no
`, port, hk, ak)), 0o600)
	s := &sshServer{t: t, bin: bin, dir: dir, port: port, log: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, "-D", "-e", "-f", cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(s.stop)
	// Ready when it answers a handshake.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := HandshakeHostKey(context.Background(), s.addr(), 2*time.Second)
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not come up: %v\n%s", err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sshServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *sshServer) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func mustWrite(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestRealOpenSSHLoginByAlias is the done-when of issue 5 for this package:
// a real ssh client configured only by our files (alias block, known_hosts
// from UpsertKnownHost, our generated key) logs into a real sshd on a
// non-22 port by alias with strict host key checking; after the server's
// host key changes, the same command fails on the host key and our
// handshake cross-check reports the mismatch.
func TestRealOpenSSHLoginByAlias(t *testing.T) {
	testenv.NeedRoot(t) // the alias logs in as root, as the nix daemon does
	sshBin := testenv.LookPath(t, "ssh")
	keygen := testenv.LookPath(t, "ssh-keygen")
	dir := t.TempDir()
	const name = "nixbuilder"

	hostKey1, err := GenerateKey("root@builder")
	if err != nil {
		t.Fatal(err)
	}
	client, err := GenerateKey(KeyComment(name))
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	srv := startSSHD(t, filepath.Join(dir), port, hostKey1.Private, client.Public)

	// The pin comes from the docker side as .pub bytes.
	pinned, err := ParseHostKey(hostKey1.Public)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyHostKey(context.Background(), srv.addr(), pinned, 5*time.Second); err != nil {
		t.Fatalf("handshake cross-check with the right key: %v", err)
	}

	keyFile := filepath.Join(dir, name+"_ed25519")
	mustWrite(t, keyFile, client.Private, 0o600)
	aliasFile := filepath.Join(dir, "100-"+name+".conf")
	alias := NewAliasConfig(name, port, keyFile)
	mustWrite(t, aliasFile, RenderAlias(alias), 0o644)

	// Start from a known_hosts that holds stale lines for the alias and
	// other hosts: our edit must fix the former and keep the latter.
	base, err := os.ReadFile("testdata/known_hosts/multi-host")
	if err != nil {
		t.Fatal(err)
	}
	kh, err := UpsertKnownHost(base, name, pinned)
	if err != nil {
		t.Fatal(err)
	}
	khFile := filepath.Join(dir, "known_hosts")
	mustWrite(t, khFile, kh, 0o644)

	// OpenSSH's own lookup finds our line under the bare alias.
	if out, err := exec.Command(keygen, "-F", name, "-f", khFile).CombinedOutput(); err != nil || !bytes.Contains(out, bytes.TrimSpace(PublicLine(pinned, ""))) {
		t.Errorf("ssh-keygen -F %s: %v: %s", name, err, out)
	}

	login := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sshBin, "-F", aliasFile,
			"-o", "UserKnownHostsFile="+khFile, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", name, "true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := login(); err != nil {
		t.Fatalf("ssh %s true with our files: %v\n%s\nsshd log:\n%s", name, err, out, srv.log)
	}

	// The builder comes back with another host key (container re-created
	// without its state volume).
	srv.stop()
	hostKey2, err := GenerateKey("root@builder")
	if err != nil {
		t.Fatal(err)
	}
	srv2 := startSSHD(t, filepath.Join(dir), port, hostKey2.Private, client.Public)
	out, err := login()
	if err == nil {
		t.Fatalf("ssh accepted a changed host key:\n%s", out)
	}
	if !strings.Contains(out, "Host key verification failed") {
		t.Errorf("ssh failed, but not on the host key: %v\n%s", err, out)
	}
	err = VerifyHostKey(context.Background(), srv2.addr(), pinned, 5*time.Second)
	var m *HostKeyMismatchError
	if !errors.As(err, &m) {
		t.Fatalf("cross-check after the key change: want *HostKeyMismatchError, got %v", err)
	}
	if !keysEqual(m.Presented, hostKey2.Key) || !strings.Contains(err.Error(), Fingerprint(hostKey2.Key)) || !strings.Contains(err.Error(), Fingerprint(pinned)) {
		t.Errorf("mismatch report: %v", err)
	}
	// The stored known_hosts no longer trusts what the server shows.
	if rep, _ := ReadKnownHosts(kh, name); rep.Trusts(hostKey2.Key) || len(rep.Stale(hostKey2.Key)) != 1 {
		t.Errorf("known_hosts report after the change: %+v", rep)
	}

	// Re-pinning with the new key makes ssh work again.
	kh2, err := UpsertKnownHost(kh, name, hostKey2.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, khFile, kh2, 0o644)
	if out, err := login(); err != nil {
		t.Fatalf("ssh after re-pinning: %v\n%s", err, out)
	}
}

func TestResolveConfigClean(t *testing.T) {
	testenv.LookPath(t, "ssh")
	dir := t.TempDir()
	alias := NewAliasConfig("nixbuilder", 2222, "/etc/nix/nixbuilder_ed25519")
	f := filepath.Join(dir, "100-nixbuilder.conf")
	mustWrite(t, f, RenderAlias(alias), 0o644)
	r, err := ResolveConfig(context.Background(), ConfigQuery{Args: []string{"-F", f}, Alias: "nixbuilder"})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Check(alias); len(o) != 0 {
		t.Errorf("our block alone: overrides %v", o)
	}
	if r.Get("hostname") != "127.0.0.1" || r.Get("port") != "2222" {
		t.Errorf("ssh -G values: %v", r.Values)
	}
	if s := r.Sources["port"]; len(s) != 1 || s[0].File != f || s[0].Line != 5 {
		t.Errorf("port source: %+v", s)
	}
}

// TestResolveConfigOverride: a `Host *` block read before our block (as
// ~/.ssh/config is read before the system files) wins, and the report names
// its file and line.
func TestResolveConfigOverride(t *testing.T) {
	testenv.LookPath(t, "ssh")
	dir := t.TempDir()
	alias := NewAliasConfig("nixbuilder", 2222, "/etc/nix/nixbuilder_ed25519")
	aliasFile := filepath.Join(dir, "100-nixbuilder.conf")
	mustWrite(t, aliasFile, RenderAlias(alias), 0o644)
	userCfg := filepath.Join(dir, "config")
	mustWrite(t, userCfg, []byte("# user config\nHost *\n  User fallback\n  Port 2200\nHost other\n  Port 1\n"+
		"Match all\n  IdentityFile ~/.ssh/id_mine\nInclude "+aliasFile+"\n"), 0o644)

	r, err := ResolveConfig(context.Background(), ConfigQuery{Args: []string{"-F", userCfg}, Alias: "nixbuilder"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Override{}
	for _, o := range r.Check(alias) {
		got[o.Option] = o
	}
	want := map[string]Override{
		"user":         {Option: "user", Want: "root", Got: "fallback", File: userCfg, Line: 3},
		"port":         {Option: "port", Want: "2222", Got: "2200", File: userCfg, Line: 4},
		"identityfile": {Option: "identityfile", Want: "/etc/nix/nixbuilder_ed25519", File: userCfg, Line: 8},
	}
	if len(got) != len(want) {
		t.Errorf("overrides: %v", r.Check(alias))
	}
	for k, w := range want {
		g := got[k]
		if k == "identityfile" {
			w.Got = g.Got // both keys, as ssh -G lists them
			if !strings.Contains(g.Got, "id_mine") || !strings.Contains(g.Got, alias.IdentityFile) {
				t.Errorf("identityfile got %q", g.Got)
			}
		}
		if g != w {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
		if !strings.Contains(g.String(), userCfg) {
			t.Errorf("report %q does not name %s", g.String(), userCfg)
		}
	}
	if len(r.Files) != 2 || r.Files[1] != aliasFile {
		t.Errorf("files read: %v", r.Files)
	}
}

func TestResolveConfigRejected(t *testing.T) {
	testenv.LookPath(t, "ssh")
	if out, _ := exec.Command("ssh", "-V").CombinedOutput(); bytes.Contains(out, []byte("Apple")) {
		t.Skip("Apple's ssh knows UseKeychain")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	mustWrite(t, cfg, []byte("Host *\n  AddKeysToAgent yes\n  UseKeychain yes\n"), 0o644)
	_, err := ResolveConfig(context.Background(), ConfigQuery{Args: []string{"-F", cfg}, Alias: "nixbuilder"})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want *ConfigError, got %v", err)
	}
	if ce.File != cfg || ce.Line != 3 || !strings.Contains(strings.ToLower(ce.Message), "usekeychain") {
		t.Errorf("config error %+v", ce)
	}
	if !strings.Contains(err.Error(), "IgnoreUnknown UseKeychain") {
		t.Errorf("no hint in %q", err)
	}
}
