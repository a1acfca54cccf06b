package sshkeys

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// AliasConfig is the ssh_config alias that makes Nix and OpenSSH agree on
// host, port, user, key and host key name on every Nix version.
type AliasConfig struct {
	Name         string // the alias and HostKeyAlias ("nixbuilder")
	HostName     string // "127.0.0.1": never "localhost", which may resolve to ::1
	Port         int
	User         string // "root"
	IdentityFile string // "/etc/nix/<name>_ed25519"
}

// NewAliasConfig returns the alias for builder name on port with the
// design's fixed values and key path keyFile.
func NewAliasConfig(name string, port int, keyFile string) AliasConfig {
	return AliasConfig{Name: name, HostName: "127.0.0.1", Port: port, User: "root", IdentityFile: keyFile}
}

// Validate reports values that would make the rendered block mean something
// else than intended (a name with spaces is two Host patterns, a wildcard
// matches other hosts).
func (c AliasConfig) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, " \t\r\n\"'#*?!,=") {
		return fmt.Errorf("ssh alias %q: use letters, digits, '-', '_' or '.'", c.Name)
	}
	if c.HostName == "" || strings.ContainsAny(c.HostName, " \t\r\n\"") {
		return fmt.Errorf("ssh alias %s: bad HostName %q", c.Name, c.HostName)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("ssh alias %s: port %d out of range", c.Name, c.Port)
	}
	if c.User == "" || strings.ContainsAny(c.User, " \t\r\n\"") {
		return fmt.Errorf("ssh alias %s: bad User %q", c.Name, c.User)
	}
	if c.IdentityFile == "" || strings.ContainsAny(c.IdentityFile, "\r\n\"") {
		return fmt.Errorf("ssh alias %s: bad IdentityFile %q", c.Name, c.IdentityFile)
	}
	return nil
}

// AliasHeader is the comment that opens the alias file: the whole file
// belongs to nixbuilder-setup.
const AliasHeader = "# Managed by nixbuilder-setup: this whole file is written by `nixbuilder-setup setup`\n" +
	"# and removed by `nixbuilder-setup uninstall`. Edits here are replaced on repair.\n"

// RenderAlias renders the alias file (/etc/ssh/ssh_config.d/100-<name>.conf)
// for a validated c.
func RenderAlias(c AliasConfig) []byte {
	var b bytes.Buffer
	b.WriteString(AliasHeader)
	fmt.Fprintf(&b, "Host %s\n", c.Name)
	fmt.Fprintf(&b, "  HostName %s\n", c.HostName)
	fmt.Fprintf(&b, "  Port %d\n", c.Port)
	fmt.Fprintf(&b, "  User %s\n", c.User)
	fmt.Fprintf(&b, "  IdentityFile %s\n", quoteArg(c.IdentityFile))
	b.WriteString("  IdentitiesOnly yes\n")
	fmt.Fprintf(&b, "  HostKeyAlias %s\n", c.Name)
	return b.Bytes()
}

// quoteArg quotes an ssh_config argument that holds spaces (a key under a
// path such as "/Users/Jane Doe/…").
func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

// Want returns what `ssh -G <name>` must print for the alias, keyed as ssh -G
// prints (lower case).
func (c AliasConfig) Want() map[string]string {
	return map[string]string{
		"hostname":       c.HostName,
		"port":           strconv.Itoa(c.Port),
		"user":           c.User,
		"identityfile":   c.IdentityFile,
		"identitiesonly": "yes",
		"hostkeyalias":   c.Name,
	}
}

// SystemConfigDir is where OpenSSH resolves relative Include paths of the
// system-wide ssh_config.
const SystemConfigDir = "/etc/ssh"

// IncludeLine is the line to put at the top of /etc/ssh/ssh_config when it
// does not read the ssh_config.d directory (macOS before 12).
const IncludeLine = "Include /etc/ssh/ssh_config.d/*\n"

// HasInclude reports whether the system ssh_config (its bytes) includes
// file, the alias file's path as OpenSSH sees it
// ("/etc/ssh/ssh_config.d/100-nixbuilder.conf"). Debian writes
// `Include /etc/ssh/ssh_config.d/*.conf` and macOS 12+
// `Include /etc/ssh/ssh_config.d/*`; both match. Only an Include outside
// Host and Match blocks (or under `Host *` / `Match all`) counts, since a
// block for other hosts would skip it.
func HasInclude(sshConfig []byte, file string) bool {
	global := true
	for _, raw := range strings.Split(string(sshConfig), "\n") {
		kw, args := configLine(raw)
		switch kw {
		case "host":
			global = len(args) > 0
			for _, a := range args {
				global = global && a == "*"
			}
		case "match":
			global = len(args) == 1 && strings.EqualFold(args[0], "all")
		case "include":
			if !global {
				continue
			}
			for _, pat := range args {
				if !strings.HasPrefix(pat, "/") && !strings.HasPrefix(pat, "~") {
					pat = path.Join(SystemConfigDir, pat)
				}
				if ok, err := path.Match(pat, file); err == nil && ok {
					return true
				}
			}
		}
	}
	return false
}

// configLine splits one ssh_config line into its lower-case keyword and its
// arguments, as OpenSSH does: `Keyword args`, `Keyword=args`, `#` comments,
// double-quoted arguments.
func configLine(line string) (string, []string) {
	line = strings.TrimRight(line, "\r")
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return "", nil
	}
	end := strings.IndexAny(line, " \t=")
	if end < 0 {
		return strings.ToLower(line), nil
	}
	kw := strings.ToLower(line[:end])
	rest := strings.TrimLeft(line[end:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	return kw, splitArgs(rest)
}

func splitArgs(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] == '#' {
			return out
		}
		if s[0] == '"' {
			if i := strings.IndexByte(s[1:], '"'); i >= 0 {
				out = append(out, s[1:1+i])
				s = s[2+i:]
				continue
			}
			return append(out, s[1:])
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
}
