// Package steps holds the setup steps, one file each, as plan.Steps over
// an Env. A step's Check reads the machine and never changes it; its Apply
// makes the Check pass. Steps share what they find through Facts.
package steps

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/macos"
)

// Config is what the user chose on the command line.
type Config struct {
	Name           string   // builder name: container, alias, volumes, key file
	Port           int      // host port for the builder's sshd, on 127.0.0.1
	Systems        []string // systems to advertise; empty: what the builder runs
	MaxJobs        int      // 0: the builder's CPUs
	SpeedFactor    int
	Emulation      string // "rosetta" or "qemu"
	BuilderContext string // a Docker build context directory instead of the embedded one
	BaseImage      string // build arg BASE_IMAGE for the embedded Dockerfile
	Identity       string // an existing private key instead of the dedicated one
	Sanity         string // "probe", "hello", "both", "none"
	KeepStore      bool   // uninstall: keep the /nix volume
	KeepKey        bool   // uninstall: keep the key files
	Version        string
}

// DefaultConfig is the configuration when no flag is given.
func DefaultConfig() Config {
	return Config{Name: "nixbuilder", Port: 2222, SpeedFactor: 1, Emulation: "rosetta", Sanity: "both"}
}

// Validate reports a configuration error a user must fix.
func (c Config) Validate() error {
	if c.Name == "" || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" || strings.HasPrefix(c.Name, "-") {
		return fmt.Errorf("--name %q: use lower-case letters, digits, '-' and '_'", c.Name)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("--port %d: not a TCP port", c.Port)
	}
	if c.SpeedFactor < 1 {
		return fmt.Errorf("--speed-factor %d: must be at least 1", c.SpeedFactor)
	}
	if c.MaxJobs < 0 {
		return fmt.Errorf("--max-jobs %d: must not be negative", c.MaxJobs)
	}
	switch c.Emulation {
	case "rosetta", "qemu":
	default:
		return fmt.Errorf("--emulation %q: use rosetta or qemu", c.Emulation)
	}
	switch c.Sanity {
	case "probe", "hello", "both", "none":
	default:
		return fmt.Errorf("--sanity %q: use probe, hello, both or none", c.Sanity)
	}
	for _, s := range c.Systems {
		if !strings.Contains(s, "-") {
			return fmt.Errorf("--systems: %q is not a Nix system such as x86_64-linux", s)
		}
	}
	return nil
}

// Alias is the ssh alias (and HostKeyAlias) of the builder.
func (c Config) Alias() string { return c.Name }

// StoreURI is the machines-file URI: the alias with the user, never a port.
func (c Config) StoreURI() string { return "ssh-ng://root@" + c.Name }

// PortString is the port as text.
func (c Config) PortString() string { return strconv.Itoa(c.Port) }

// Env is what steps work with: the configuration, the machine, and the
// facts earlier steps found.
type Env struct {
	Config
	Paths  host.Paths
	Run    host.Runner
	Files  host.Files
	GOOS   string
	GOARCH string
	Nix    string // the nix program
	SSH    string // the ssh program
	Mac    *macos.Probe

	// DockerClient is the engine; nil until the docker step connects
	// (tests set a fake).
	DockerClient docker.Client
	dockerOnce   sync.Once
	dockerErr    error

	Facts *Facts
}

// Docker returns the engine client, connecting on first use through the
// endpoint the docker CLI would choose.
func (env *Env) Docker() (docker.Client, error) {
	env.dockerOnce.Do(func() {
		if env.DockerClient != nil {
			return
		}
		ep, err := docker.Resolver{ConfigDir: env.Paths.DockerConfigDir, Home: env.Paths.UserHome}.Resolve()
		if err != nil {
			env.dockerErr = err
			return
		}
		c, err := docker.Connect(ep)
		if err != nil {
			env.dockerErr = err
			return
		}
		env.DockerClient = c
	})
	if env.DockerClient == nil && env.dockerErr == nil {
		env.dockerErr = errors.New("no Docker client")
	}
	return env.DockerClient, env.dockerErr
}

// Facts are what checks found and later steps read. A step writes only
// the facts it owns; Needs orders the reads after the writes.
type Facts struct {
	mu sync.Mutex
	m  map[string]any
}

// Set records a fact.
func (f *Facts) Set(key string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]any{}
	}
	f.m[key] = v
}

// Fact returns a fact of type T, if a step has recorded one.
func Fact[T any](f *Facts, key string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[key].(T)
	return v, ok
}
