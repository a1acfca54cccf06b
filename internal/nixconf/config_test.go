package nixconf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// corpus returns every valid file of testdata/nixconf and testdata/machines.
func corpus(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

func TestCorpusSize(t *testing.T) {
	n := len(corpus(t, "nixconf")) + len(corpus(t, "machines"))
	if n < 30 {
		t.Fatalf("corpus has %d files, want at least 30", n)
	}
}

func TestParseBytesIdentityCorpus(t *testing.T) {
	for name, data := range corpus(t, "nixconf") {
		c, err := Parse(data)
		if err != nil {
			t.Errorf("%s: Parse: %v", name, err)
			continue
		}
		if got := c.Bytes(); !bytes.Equal(got, data) {
			t.Errorf("%s: Bytes() differs from input:\n got %q\nwant %q", name, got, data)
		}
	}
}

type getCase struct {
	name  string
	value string
	ok    bool
}

func TestGetCorpus(t *testing.T) {
	tests := []struct {
		file string
		gets []getCase
		incl []Include
	}{
		{file: "installer-multi-user.conf", gets: []getCase{{"build-users-group", "nixbld", true}, {"builders", "", false}}},
		{file: "installer-macos-2.24.conf", gets: []getCase{
			{"bash-prompt-prefix", `(nix:$name)\040`, true},
			{"nix-path", "nixpkgs=flake:nixpkgs", true},
			{"extra-nix-path", "nixpkgs=flake:nixpkgs", true}, // a key of its own, read literally
		}},
		{file: "determinate-nix.conf",
			gets: []getCase{
				{"substituters", "https://cache.flakehub.com", true},
				{"trusted-public-keys", "cache.flakehub.com-3:hJuILl5sVK4iKm86JzgdXW12Y2Hwd5G07qKtHTOcDCM= cache.flakehub.com-4:Asi8qIv291s0aYLyH6IOnr5Kf6+OF14WVjkE6t3xMio=", true},
			},
			incl: []Include{{Path: "nix.custom.conf", IgnoreMissing: true, Line: 4}}},
		{file: "determinate-3.conf", incl: []Include{{Path: "nix.custom.conf", IgnoreMissing: true, Line: 5}}},
		{file: "determinate-custom-user.conf", gets: []getCase{{"trusted-users", "root @admin", true}, {"experimental-features", "flakes", true}}},
		{file: "nix-darwin-generated.conf", gets: []getCase{
			{"builders", "@/etc/nix/machines", true},
			{"sandbox-paths", "", true},
			{"trusted-substituters", "", true},
			{"system-features", "nixos-test benchmark big-parallel kvm", true},
		}},
		{file: "nixos-generated.conf", gets: []getCase{{"builders", "", true}, {"options", "", true}}},
		{file: "hand-comments.conf", gets: []getCase{
			{"build-users-group", "nixbld", true},
			{"max-jobs", "8", true},
			{"cores", "0", true},
			{"trusted-users", "root alice", true},
		}},
		{file: "hand-tabs.conf", gets: []getCase{
			{"build-users-group", "nixbld", true},
			{"max-jobs", "4", true},
			{"cores", "2", true},
			{"substituters", "https://cache.nixos.org https://nix-community.cachix.org", true},
		}},
		{file: "hand-crlf.conf", gets: []getCase{{"max-jobs", "4", true}, {"builders-use-substitutes", "true", true}}},
		{file: "hand-no-final-newline.conf", gets: []getCase{{"max-jobs", "2", true}}},
		{file: "hand-crlf-no-final-newline.conf", gets: []getCase{{"keep-derivations", "true", true}}},
		{file: "hand-spacing.conf", gets: []getCase{{"max-jobs", "4", true}, {"cores", "0", true}, {"sandbox", "relaxed", true}, {"post-build-hook", "", true}}},
		{file: "builders-inline.conf", gets: []getCase{{"builders", "ssh://mac-mini aarch64-darwin ; ssh://linux-box x86_64-linux /root/.ssh/id_ed25519 4 2 big-parallel", true}}},
		{file: "builders-other-file.conf", gets: []getCase{{"builders", "@/etc/nix/remote-builders", true}, {"builders-use-substitutes", "", false}}},
		{file: "builders-empty.conf", gets: []getCase{{"builders", "", true}, {"builders-use-substitutes", "false", true}}},
		{file: "builders-overridden.conf", gets: []getCase{{"builders", "@/etc/nix/machines", true}, {"builders-use-substitutes", "true", true}}},
		{file: "extra-keys.conf", gets: []getCase{
			{"substituters", "https://cache.nixos.org https://nix-community.cachix.org https://cache.garnix.io", true},
			{"experimental-features", "nix-command flakes", true},
			{"platforms", "x86_64-darwin", true},
		}},
		{file: "extra-before-base.conf", gets: []getCase{{"substituters", "https://cache.nixos.org https://b.example https://b.example", true}}},
		{file: "includes.conf",
			gets: []getCase{{"max-jobs", "auto", true}, {"include", "", false}},
			incl: []Include{
				{Path: "/etc/nix/common.conf", Line: 1},
				{Path: "/etc/nix/local.conf", IgnoreMissing: true, Line: 2},
				{Path: "nix.custom.conf", IgnoreMissing: true, Line: 3},
				{Path: "site.conf", Line: 4},
			}},
		{file: "deprecated-names.conf", gets: []getCase{{"build-max-jobs", "4", true}, {"max-jobs", "", false}, {"binary-caches", "https://cache.nixos.org", true}, {"substituters", "", false}}},
		{file: "unknown-keys.conf", gets: []getCase{{"my-made-up-setting", "hello world", true}}},
		{file: "quotes-and-hashes.conf", gets: []getCase{
			{"bash-prompt", `"nix> "`, true},
			{"post-build-hook", "/etc/nix/upload.sh", true},
			{"access-tokens", "github.com=ghp_xxx", true},
		}},
		{file: "empty.conf", gets: []getCase{{"builders", "", false}}},
		{file: "trusted-users-lines.conf", gets: []getCase{{"trusted-users", "root alice", true}}},
		{file: "linux-builder-settings.conf", gets: []getCase{{"build-users-group", "", true}, {"sandbox-paths", "/bin/sh=/bin/busybox", true}, {"platforms", "x86_64-linux", true}}},
		{file: "mixed-line-endings.conf", gets: []getCase{{"max-jobs", "4", true}, {"cores", "2", true}, {"sandbox", "true", true}}},
		{file: "with-our-block.conf", gets: []getCase{{"builders", "@/etc/nix/machines", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "nixconf", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range tt.gets {
				v, ok := c.Get(g.name)
				if v != g.value || ok != g.ok {
					t.Errorf("Get(%q) = %q, %v; want %q, %v", g.name, v, ok, g.value, g.ok)
				}
			}
			if got := c.Includes(); !reflect.DeepEqual(got, tt.incl) {
				t.Errorf("Includes() = %+v, want %+v", got, tt.incl)
			}
		})
	}
}

func TestGetSemantics(t *testing.T) {
	tests := []struct {
		in, name, want string
		ok             bool
	}{
		{"a = x y\na = z\n", "a", "z", true},
		{"a = x\nextra-a = y\nextra-a = y\n", "a", "x y y", true},
		{"extra-a = y\n", "a", "y", true},
		{"extra-a = y\na = x\n", "a", "x", true},
		{"a = x # c\n", "a", "x", true},
		{"a = x#c\n", "a", "x", true},
		{"a = \t x \t  y\r\n", "a", "x y", true},
		{"a =\n", "a", "", true},
		{"a = 1\n", "b", "", false},
		{"include a\n", "include", "", false},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if v, ok := c.Get(tt.name); v != tt.want || ok != tt.ok {
			t.Errorf("Parse(%q).Get(%q) = %q, %v; want %q, %v", tt.in, tt.name, v, ok, tt.want, tt.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		file string
		line int
		text string
	}{
		{"no-spaces-equals.conf", 2, "builders=@/etc/nix/machines"},
		{"lone-word.conf", 3, "sandbox"},
		{"include-two-files.conf", 1, "include a.conf b.conf"},
		{"colon.conf", 1, "max-jobs: 4"},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", "invalid", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(data)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: Parse error = %v, want a *SyntaxError", tt.file, err)
			continue
		}
		if se.Line != tt.line || se.Text != tt.text {
			t.Errorf("%s: error at line %d %q, want line %d %q", tt.file, se.Line, se.Text, tt.line, tt.text)
		}
		if msg := err.Error(); !strings.Contains(msg, tt.text) {
			t.Errorf("%s: message %q does not show the line", tt.file, msg)
		}
	}
}
