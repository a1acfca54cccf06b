package nixconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func file(data []byte) FileFacts { return FileFacts{Exists: true, Data: data} }

func TestDetectOwnership(t *testing.T) {
	determinate := readTestdata(t, "nixconf", "determinate-nix.conf")
	determinate3 := readTestdata(t, "nixconf", "determinate-3.conf")
	custom := readTestdata(t, "nixconf", "determinate-custom-user.conf")
	tests := []struct {
		name           string
		conf, custom   FileFacts
		layout         Layout
		file           string
		blocked        bool
		customIncluded bool
		reason         string
	}{
		{name: "installer", conf: file(readTestdata(t, "nixconf", "installer-multi-user.conf")), layout: Upstream, file: "/etc/nix/nix.conf"},
		{name: "no nix.conf yet", layout: Upstream, file: "/etc/nix/nix.conf"},
		{name: "determinate", conf: file(determinate), custom: file(custom), layout: Determinate, file: "/etc/nix/nix.custom.conf", customIncluded: true},
		{name: "determinate 3 header", conf: file(determinate3), layout: Determinate, file: "/etc/nix/nix.custom.conf", customIncluded: true},
		{name: "determinate absolute include", conf: file([]byte("include /etc/nix/nix.custom.conf\n")), layout: Determinate, file: "/etc/nix/nix.custom.conf", customIncluded: true},
		{name: "determinate header without include", conf: file([]byte(DeterminateHeader + "\nmax-jobs = auto\n")), layout: Determinate, blocked: true, reason: "does not include nix.custom.conf"},
		{name: "nix-darwin", conf: FileFacts{Exists: true, IsSymlink: true, LinkTarget: "/etc/static/nix/nix.conf", Data: readTestdata(t, "nixconf", "nix-darwin-generated.conf")}, layout: NixDarwin, blocked: true, reason: "nix-darwin"},
		{name: "nix-darwin relative link", conf: FileFacts{Exists: true, IsSymlink: true, LinkTarget: "../static/nix/nix.conf"}, layout: NixDarwin, blocked: true, reason: "nix-darwin"},
		{name: "other symlink", conf: FileFacts{Exists: true, IsSymlink: true, LinkTarget: "/opt/nix.conf", Data: []byte("a = b\n")}, layout: Upstream, blocked: true, reason: "/opt/nix.conf"},
		{name: "custom is a link", conf: file(determinate), custom: FileFacts{Exists: true, IsSymlink: true, LinkTarget: "/x"}, layout: Determinate, blocked: true, customIncluded: true, reason: "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := DetectOwnership("/etc/nix", tt.conf, tt.custom)
			if err != nil {
				t.Fatal(err)
			}
			if o.Layout != tt.layout || o.File != tt.file || o.Blocked != tt.blocked || o.CustomIncluded != tt.customIncluded || !strings.Contains(o.Reason, tt.reason) {
				t.Errorf("got %+v\nwant layout %v file %q blocked %v customIncluded %v reason containing %q", o, tt.layout, tt.file, tt.blocked, tt.customIncluded, tt.reason)
			}
		})
	}
	if o, _ := DetectOwnership("/tmp/conf", file(nil), FileFacts{}); o.File != "/tmp/conf/nix.conf" {
		t.Errorf("NIX_CONF_DIR not honoured: %+v", o)
	}
	_, err := DetectOwnership("/etc/nix", file([]byte("builders=x\n")), FileFacts{})
	if err == nil || !strings.Contains(err.Error(), "/etc/nix/nix.conf") || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken nix.conf: error %v, want one naming the file and line", err)
	}
}

func TestMergeBuilders(t *testing.T) {
	const m = "/etc/nix/machines"
	tests := []struct {
		current, want, elsewhere string
	}{
		{"", "@/etc/nix/machines", ""},
		{"  ", "@/etc/nix/machines", ""},
		{"ssh://other x86_64-linux", "ssh://other x86_64-linux ; @/etc/nix/machines", ""},
		{"ssh://a x ; ssh://b y", "ssh://a x ; ssh://b y ; @/etc/nix/machines", ""},
		{"@/etc/nix/machines", "@/etc/nix/machines", ""},
		{"ssh://other x86_64-linux ; @/etc/nix/machines", "ssh://other x86_64-linux ; @/etc/nix/machines", ""},
		{"@/etc/nix/remote-builders", "@/etc/nix/remote-builders", "/etc/nix/remote-builders"},
		{"@/etc/nix/a ; ssh://b y", "@/etc/nix/a ; ssh://b y ; @/etc/nix/machines", ""},
	}
	for _, tt := range tests {
		v, e := MergeBuilders(tt.current, m)
		if v != tt.want || e != tt.elsewhere {
			t.Errorf("MergeBuilders(%q) = %q, %q; want %q, %q", tt.current, v, e, tt.want, tt.elsewhere)
		}
		// Merging again changes nothing.
		if tt.elsewhere == "" {
			if v2, _ := MergeBuilders(v, m); v2 != v {
				t.Errorf("MergeBuilders is not idempotent: %q then %q", v, v2)
			}
		}
	}
}

func TestNixConfBody(t *testing.T) {
	body, elsewhere, err := NixConfBody("ssh://other x86_64-linux", "/etc/nix/machines")
	if err != nil || elsewhere != "" || string(body) != "builders = ssh://other x86_64-linux ; @/etc/nix/machines\nbuilders-use-substitutes = true\n" {
		t.Errorf("NixConfBody = %q, %q, %v", body, elsewhere, err)
	}
	body, elsewhere, err = NixConfBody("@/etc/nix/remote-builders", "/etc/nix/machines")
	if err != nil || elsewhere != "/etc/nix/remote-builders" || string(body) != "builders-use-substitutes = true\n" {
		t.Errorf("NixConfBody with another file = %q, %q, %v", body, elsewhere, err)
	}
	for _, bad := range []string{"relative/machines", "/etc/nix/my machines"} {
		if _, _, err := NixConfBody("", bad); err == nil {
			t.Errorf("machines path %q accepted", bad)
		}
	}
	if _, _, err := NixConfBody("ssh://a # x", "/etc/nix/machines"); err == nil {
		t.Error("a builders value with '#' accepted")
	}
	// The body is a valid nix.conf on its own, with the values we meant.
	body, _, _ = NixConfBody("", "/etc/nix/machines")
	c, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("builders"); v != "@/etc/nix/machines" {
		t.Errorf("builders = %q", v)
	}
}

func TestNixDarwinSnippet(t *testing.T) {
	m := Machine{
		URI: "ssh-ng://root@nixbuilder", Systems: []string{"x86_64-linux", "aarch64-linux"},
		SSHKey: "/etc/nix/nixbuilder_ed25519", MaxJobs: 8, SpeedFactor: 1,
		SupportedFeatures: []string{"big-parallel", "benchmark"}, PublicHostKey: testHostKey,
	}
	got, err := NixDarwinSnippet(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "nix-darwin-snippet.nix.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("snippet differs from %s:\n%s", golden, got)
	}
	for _, bad := range []Machine{
		{URI: "ssh-ng://root@localhost:2222", MaxJobs: 1, SpeedFactor: 1},
		{URI: "nixbuilder", MaxJobs: 1, SpeedFactor: 1},
		{URI: "ssh-ng://root@nixbuilder", MaxJobs: 1, SpeedFactor: 1.5},
	} {
		if _, err := NixDarwinSnippet(bad); err == nil {
			t.Errorf("NixDarwinSnippet(%+v) accepted", bad)
		}
	}
	if s := nixString(`a"b\c${d}`); s != `"a\"b\\c\${d}"` {
		t.Errorf("nixString = %s", s)
	}
}
