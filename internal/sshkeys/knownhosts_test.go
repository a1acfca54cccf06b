package sshkeys

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testKey returns a deterministic ed25519 key, so that golden files are
// stable.
func testKey(t testing.TB, seed byte) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey(), signer
}

func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/known_hosts/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no known_hosts corpus: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %q\nwant: %q", path, got, want)
	}
}

// checkEditInvariants asserts the contract of UpsertKnownHost and
// RemoveKnownHost on one input.
func checkEditInvariants(t testing.TB, in []byte, host string, key ssh.PublicKey) []byte {
	t.Helper()
	out, err := UpsertKnownHost(in, host, key)
	if err != nil {
		t.Fatalf("UpsertKnownHost: %v", err)
	}
	again, err := UpsertKnownHost(out, host, key)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("not idempotent (err %v):\nonce:  %q\ntwice: %q", err, out, again)
	}
	rep, err := ReadKnownHosts(out, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plain) != 1 || !keysEqual(rep.Plain[0].Key, key) || rep.Plain[0].Marker != "" {
		t.Fatalf("after upsert want exactly one plain line trusting the key, got %+v in %q", rep.Plain, out)
	}
	// Minimal: every line that does not name host survives byte for byte,
	// in order (the last line may gain a newline).
	h, _ := checkHost(host)
	outLines := splitLines(out)
	j := 0
	for _, l := range splitLines(in) {
		if only, mixed := classify(parseLine(l.text), h); only || mixed {
			continue
		}
		for j < len(outLines) && outLines[j].text != l.text {
			j++
		}
		if j == len(outLines) || (l.eol != "" && outLines[j].eol != l.eol) {
			t.Fatalf("line %q lost or changed:\nin:  %q\nout: %q", l.text, in, out)
		}
		j++
	}
	// Reversible: removing host after the upsert is removing it before.
	r1, err1 := RemoveKnownHost(out, host)
	r0, err0 := RemoveKnownHost(in, host)
	if err0 != nil || err1 != nil || !bytes.Equal(r0, r1) {
		t.Fatalf("Remove(Upsert(x)) != Remove(x):\n%q\n%q", r1, r0)
	}
	if r2, _ := RemoveKnownHost(r1, host); !bytes.Equal(r2, r1) {
		t.Fatalf("RemoveKnownHost not idempotent: %q -> %q", r1, r2)
	}
	return out
}

func TestUpsertKnownHostCorpus(t *testing.T) {
	pinned, _ := testKey(t, 7)
	for name, in := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			out := checkEditInvariants(t, in, "nixbuilder", pinned)
			golden(t, filepath.Join("testdata", "upsert", name), out)

			rep, _ := ReadKnownHosts(in, "nixbuilder")
			if mentions := len(rep.Plain); mentions == 0 {
				// Nothing of ours before: removal restores the file exactly.
				back, _ := RemoveKnownHost(out, "nixbuilder")
				if !bytes.Equal(back, in) {
					t.Errorf("remove after upsert:\n got %q\nwant %q", back, in)
				}
			}
			if len(rep.Malformed) > 0 {
				return // x/crypto's knownhosts refuses the whole file
			}
			// x/crypto's own known_hosts reader agrees.
			f := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(f, out, 0o600); err != nil {
				t.Fatal(err)
			}
			cb, err := knownhosts.New(f)
			if err != nil {
				t.Fatalf("knownhosts.New on our output: %v", err)
			}
			tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
			if err := cb("nixbuilder:22", tcp, pinned); err != nil {
				t.Errorf("x/crypto knownhosts does not trust the pinned key for nixbuilder: %v", err)
			}
		})
	}
}

func TestUpsertKnownHostCases(t *testing.T) {
	pinned, _ := testKey(t, 7)
	other, _ := testKey(t, 8)
	line := func(hosts string, k ssh.PublicKey) string {
		return hosts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	want := line("nixbuilder", pinned)
	tests := []struct {
		name, in, out string
	}{
		{"empty", "", want + "\n"},
		{"append", "# c\n", "# c\n" + want + "\n"},
		{"append keeps missing newline", line("a", other), line("a", other) + "\n" + want},
		{"append crlf", "# c\r\n", "# c\r\n" + want + "\r\n"},
		{"replace stale in place", "# c\n" + line("nixbuilder", other) + "\n# d\n", "# c\n" + want + "\n# d\n"},
		{"keep correct line with comment", line("nixbuilder", pinned) + " my note\n", line("nixbuilder", pinned) + " my note\n"},
		{"drop duplicates", want + "\n" + line("nixbuilder", other) + "\n" + want + "\n", want + "\n"},
		{"second correct line wins over stale first", line("nixbuilder", other) + "\n" + want + "\n", want + "\n"},
		{"remove from host list", line("a,nixbuilder,b", other) + "\n", line("a,b", other) + "\n" + want + "\n"},
		{"bracketed default port is the same host", line("[nixbuilder]:22", other) + "\n", want + "\n"},
		{"other port is another host", line("[nixbuilder]:2222", other) + "\n", line("[nixbuilder]:2222", other) + "\n" + want + "\n"},
		{"markers untouched", "@revoked " + line("nixbuilder", other) + "\n", "@revoked " + line("nixbuilder", other) + "\n" + want + "\n"},
		{"negated untouched", line("!nixbuilder,*", other) + "\n", line("!nixbuilder,*", other) + "\n" + want + "\n"},
		{"malformed kept", "nixbuilder ssh-ed25519 !!!\n", "nixbuilder ssh-ed25519 !!!\n" + want + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkEditInvariants(t, []byte(tc.in), "nixbuilder", pinned)
			if string(got) != tc.out {
				t.Errorf("UpsertKnownHost:\n got %q\nwant %q", got, tc.out)
			}
		})
	}
}

func TestUpsertKnownHostRejectsBadInput(t *testing.T) {
	pinned, _ := testKey(t, 7)
	for _, h := range []string{"", "a b", "a,b", "*", "|1|x|y", "@revoked"} {
		if _, err := UpsertKnownHost(nil, h, pinned); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
	if _, err := UpsertKnownHost(nil, "nixbuilder", nil); err == nil {
		t.Error("nil key accepted")
	}
}

func TestReadKnownHosts(t *testing.T) {
	c := corpus(t)

	rep, err := ReadKnownHosts(c["hashed"], "nixbuilder")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hashed) != 1 || rep.Hashed[0].Line != 1 || len(rep.Plain) != 0 {
		t.Errorf("hashed: want the ssh-keygen -H entry on line 1 detected, got %+v", rep)
	}
	if rep, _ := ReadKnownHosts(c["hashed"], "gitlab.com"); len(rep.Hashed) != 0 {
		t.Errorf("hashed entry matched the wrong host: %+v", rep.Hashed)
	}
	removed, _ := RemoveHashedKnownHost(c["hashed"], "nixbuilder")
	if want := c["hashed"][bytes.IndexByte(c["hashed"], '\n')+1:]; !bytes.Equal(removed, want) {
		t.Errorf("RemoveHashedKnownHost: got %q want %q", removed, want)
	}

	rep, _ = ReadKnownHosts(c["malformed"], "nixbuilder")
	var lines []int
	for _, m := range rep.Malformed {
		lines = append(lines, m.Line)
	}
	if len(lines) != 5 || lines[0] != 1 || lines[4] != 5 {
		t.Errorf("malformed lines: got %v (%+v), want 1..5", lines, rep.Malformed)
	}

	rep, _ = ReadKnownHosts(c["markers"], "nixbuilder")
	if len(rep.Marked) != 2 || len(rep.Plain) != 0 {
		t.Errorf("markers: got %+v", rep)
	}
	revoked := rep.Marked[0].Key
	if rep.Trusts(revoked) {
		t.Error("a revoked key is reported as trusted")
	}

	rep, _ = ReadKnownHosts(c["stale-alias"], "nixbuilder")
	if len(rep.Plain) != 2 {
		t.Fatalf("stale-alias: got %+v", rep.Plain)
	}
	pinned, _ := testKey(t, 7)
	if rep.Trusts(pinned) || len(rep.Stale(pinned)) != 2 {
		t.Errorf("stale-alias: Trusts/Stale wrong: %+v", rep)
	}
	if !rep.Trusts(rep.Plain[0].Key) || len(rep.Stale(rep.Plain[0].Key)) != 1 {
		t.Errorf("stale-alias: the first key should be trusted and the other stale")
	}
}

func FuzzKnownHosts(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	f.Add([]byte("nixbuilder\r\n\r\n@ nixbuilder,x ssh-ed25519 AAAA\n"), uint8(2))
	pinned, _ := testKey(f, 7)
	hosts := []string{"nixbuilder", "github.com", "127.0.0.1:2222"}
	f.Fuzz(func(t *testing.T, in []byte, sel uint8) {
		host := hosts[int(sel)%len(hosts)]
		checkEditInvariants(t, in, host, pinned)
		if _, err := ReadKnownHosts(in, host); err != nil {
			t.Fatal(err)
		}
		if _, err := RemoveHashedKnownHost(in, host); err != nil {
			t.Fatal(err)
		}
	})
}
