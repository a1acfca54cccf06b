package sshkeys

import (
	"path/filepath"
	"testing"
)

func TestRenderAlias(t *testing.T) {
	c := NewAliasConfig("nixbuilder", 2222, "/etc/nix/nixbuilder_ed25519")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "alias", "nixbuilder.conf"), RenderAlias(c))

	spaced := NewAliasConfig("b2", 31022, "/Users/Jane Doe/.ssh/id_ed25519")
	golden(t, filepath.Join("testdata", "alias", "spaced.conf"), RenderAlias(spaced))

	for _, bad := range []AliasConfig{
		NewAliasConfig("a b", 2222, "/k"),
		NewAliasConfig("*", 2222, "/k"),
		NewAliasConfig("", 2222, "/k"),
		NewAliasConfig("n", 0, "/k"),
		NewAliasConfig("n", 70000, "/k"),
		NewAliasConfig("n", 22, ""),
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestHasInclude(t *testing.T) {
	const file = "/etc/ssh/ssh_config.d/100-nixbuilder.conf"
	tests := []struct {
		name, cfg string
		want      bool
	}{
		{"debian", "# comment\nInclude /etc/ssh/ssh_config.d/*.conf\n\nHost *\n    SendEnv LANG LC_*\n", true},
		{"macos 12", "Include /etc/ssh/ssh_config.d/*\r\nHost *\r\n  SendEnv LANG LC_*\r\n", true},
		{"relative", "include ssh_config.d/*\n", true},
		{"equals and quotes", "Include=\"/etc/ssh/ssh_config.d/*\"\n", true},
		{"several args", "Include /etc/ssh/other /etc/ssh/ssh_config.d/1*\n", true},
		{"old macos", "Host *\n  SendEnv LANG LC_*\n", false},
		{"commented", "#Include /etc/ssh/ssh_config.d/*\n", false},
		{"other dir", "Include /etc/ssh/conf.d/*\n", false},
		{"in a host block", "Host other\n  Include /etc/ssh/ssh_config.d/*\n", false},
		{"in host star", "Host *\n  Include /etc/ssh/ssh_config.d/*\n", true},
		{"wrong suffix", "Include /etc/ssh/ssh_config.d/*.cfg\n", false},
	}
	for _, tc := range tests {
		if got := HasInclude([]byte(tc.cfg), file); got != tc.want {
			t.Errorf("%s: HasInclude = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Our key listed twice (our block in a user's config, then the alias file)
// is not an override; a foreign key between them is.
func TestCheckIdentityFileListedTwice(t *testing.T) {
	c := NewAliasConfig("nixbuilder", 2222, "/etc/nix/nixbuilder_ed25519")
	values := map[string][]string{}
	for k, v := range c.Want() {
		values[k] = []string{v}
	}
	values["identityfile"] = []string{c.IdentityFile, c.IdentityFile}
	if o := (&ResolvedConfig{Values: values}).Check(c); len(o) != 0 {
		t.Errorf("overrides %v, want none", o)
	}
	values["identityfile"] = []string{c.IdentityFile, "/root/.ssh/id_rsa", c.IdentityFile}
	if o := (&ResolvedConfig{Values: values}).Check(c); len(o) != 1 || o[0].Option != "identityfile" {
		t.Errorf("overrides %v, want the foreign identity file", o)
	}
}
