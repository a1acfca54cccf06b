// Package host is the tool's layer over the machine it runs on: where every
// file is, atomic file writes, the one privileged runner, and the run lock.
package host

import (
	"os"
	"os/user"
	"path/filepath"
	"runtime"
)

// Paths holds every host path the tool reads or writes. All of them derive
// from one root, so tests can move the whole machine into a directory.
type Paths struct {
	Root            string // "/" on a real machine
	GOOS            string
	EtcNix          string // /etc/nix: the builder key lives here
	NixConfDir      string // NIX_CONF_DIR, or /etc/nix
	SSHConfig       string // /etc/ssh/ssh_config
	SSHConfigDir    string // /etc/ssh/ssh_config.d
	RootHome        string // /var/root on macOS, /root elsewhere
	UserHome        string // the invoking user's home
	DockerConfigDir string // DOCKER_CONFIG, or ~/.docker
	LockFile        string
}

// NewPaths derives the paths for a machine rooted at root ("" or "/" for
// the real one). getenv reads the environment; userHome is the invoking
// user's home directory (looked up when empty).
func NewPaths(root, goos string, getenv func(string) string, userHome string) Paths {
	if root == "" {
		root = "/"
	}
	if goos == "" {
		goos = runtime.GOOS
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	in := func(p string) string { return filepath.Join(root, p) }
	p := Paths{
		Root:         root,
		GOOS:         goos,
		EtcNix:       in("/etc/nix"),
		NixConfDir:   in("/etc/nix"),
		SSHConfig:    in("/etc/ssh/ssh_config"),
		SSHConfigDir: in("/etc/ssh/ssh_config.d"),
		RootHome:     in("/root"),
	}
	if goos == "darwin" {
		p.RootHome = in("/var/root")
	}
	if d := getenv("NIX_CONF_DIR"); d != "" {
		p.NixConfDir = in(d)
	}
	if userHome == "" {
		userHome = invokingHome(getenv)
	}
	if root != "/" && !filepath.IsAbs(userHome) {
		userHome = "/" + userHome
	}
	if root != "/" {
		userHome = in(userHome)
	}
	p.UserHome = userHome
	p.DockerConfigDir = filepath.Join(userHome, ".docker")
	if d := getenv("DOCKER_CONFIG"); d != "" {
		p.DockerConfigDir = d
		if root != "/" {
			p.DockerConfigDir = in(d)
		}
	}
	p.LockFile = filepath.Join(os.TempDir(), "nixbuilder-setup.lock")
	if root != "/" {
		p.LockFile = in("/tmp/nixbuilder-setup.lock")
	}
	return p
}

// invokingHome is the home of the user who ran the tool: under sudo that is
// SUDO_USER's, since Docker's socket and ~/.docker belong to that user.
func invokingHome(getenv func(string) string) string {
	if su := getenv("SUDO_USER"); su != "" && os.Geteuid() == 0 {
		if u, err := user.Lookup(su); err == nil {
			return u.HomeDir
		}
	}
	if h := getenv("HOME"); h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

// NixConf is the system nix.conf.
func (p Paths) NixConf() string { return filepath.Join(p.NixConfDir, "nix.conf") }

// NixCustomConf is Determinate Nix's file for user settings.
func (p Paths) NixCustomConf() string { return filepath.Join(p.NixConfDir, "nix.custom.conf") }

// Machines is the system machines file.
func (p Paths) Machines() string { return filepath.Join(p.NixConfDir, "machines") }

// Key is the dedicated private key for builder name; its public half is
// Key(name)+".pub".
func (p Paths) Key(name string) string { return filepath.Join(p.EtcNix, name+"_ed25519") }

// AliasFile is the ssh_config.d file holding the builder's Host block.
func (p Paths) AliasFile(name string) string {
	return filepath.Join(p.SSHConfigDir, "100-"+name+".conf")
}

// RootKnownHosts is root's known_hosts: the daemon connects as root.
func (p Paths) RootKnownHosts() string { return filepath.Join(p.RootHome, ".ssh", "known_hosts") }

// UserKnownHosts is the invoking user's known_hosts, so that `ssh <name>`
// works for the user too.
func (p Paths) UserKnownHosts() string { return filepath.Join(p.UserHome, ".ssh", "known_hosts") }

// KnownHostsFiles lists the known_hosts files that must trust the builder,
// root's first, without duplicates (when the user is root they are one).
func (p Paths) KnownHostsFiles() []string {
	r, u := p.RootKnownHosts(), p.UserKnownHosts()
	if filepath.Clean(r) == filepath.Clean(u) {
		return []string{r}
	}
	return []string{r, u}
}
