package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Endpoint is the engine address chosen the way the docker CLI chooses it.
type Endpoint struct {
	// Host is the engine address, e.g. "unix:///var/run/docker.sock".
	Host string
	// Context is the docker context name ("default" when none is set).
	Context string
	// Source says where Host came from, for messages: "DOCKER_HOST",
	// "context colima (/Users/me/.docker/contexts/meta/…/meta.json)", …
	Source string
	// Product is what the endpoint looks like: one of the Product… names.
	Product string
	// FromEnv is true when Host came from DOCKER_HOST, so that
	// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply as well.
	FromEnv bool
}

// Products recognised from a context name or socket path.
const (
	ProductDockerDesktop  = "Docker Desktop"
	ProductOrbStack       = "OrbStack"
	ProductColima         = "Colima"
	ProductRancherDesktop = "Rancher Desktop"
	ProductEngine         = "Docker Engine"
)

// DefaultSocket is the engine socket used when nothing else is configured.
const DefaultSocket = "/var/run/docker.sock"

// Resolver holds what endpoint resolution reads, so that tests can point it
// at fixture directories.
type Resolver struct {
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// ConfigDir is the docker CLI configuration directory. Empty means
	// $DOCKER_CONFIG, else $HOME/.docker.
	ConfigDir string
	// Home is the user's home directory (os.UserHomeDir when empty); Docker
	// Desktop's socket is $Home/.docker/run/docker.sock.
	Home string
	// DefaultSocket overrides DefaultSocket (tests).
	DefaultSocket string
}

// ResolveEndpoint resolves the engine endpoint from the real environment.
func ResolveEndpoint() (Endpoint, error) {
	return Resolver{}.Resolve()
}

// Resolve returns the endpoint the docker CLI would use: DOCKER_HOST, then
// DOCKER_CONTEXT, then currentContext of config.json, then the default
// socket, then Docker Desktop's per-user socket.
func (r Resolver) Resolve() (Endpoint, error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := r.Home
	if home == "" {
		home = getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
	}
	configDir := r.ConfigDir
	if configDir == "" {
		configDir = getenv("DOCKER_CONFIG")
	}
	if configDir == "" {
		configDir = filepath.Join(home, ".docker")
	}
	defSock := r.DefaultSocket
	if defSock == "" {
		defSock = DefaultSocket
	}

	if h := getenv("DOCKER_HOST"); h != "" {
		return Endpoint{Host: h, Context: "default", Source: "DOCKER_HOST", Product: productOf("", h), FromEnv: true}, nil
	}
	name, source := getenv("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
	if name == "" {
		cfgPath := filepath.Join(configDir, "config.json")
		cur, err := currentContext(cfgPath)
		if err != nil {
			return Endpoint{}, err
		}
		name, source = cur, cfgPath
	}
	if name != "" && name != "default" {
		return contextEndpoint(configDir, name, source)
	}

	desktop := filepath.Join(home, ".docker", "run", "docker.sock")
	if exists(defSock) || !exists(desktop) {
		return Endpoint{Host: "unix://" + defSock, Context: "default", Source: "default socket", Product: productOf("", defSock)}, nil
	}
	return Endpoint{Host: "unix://" + desktop, Context: "default", Source: "Docker Desktop socket", Product: ProductDockerDesktop}, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// currentContext reads currentContext from the docker CLI's config.json; a
// missing file means no context.
func currentContext(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read docker config %s: %w", path, err)
	}
	var cfg struct {
		CurrentContext string `json:"currentContext"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("docker config %s is not valid JSON (%v): fix or remove it, or set DOCKER_HOST", path, err)
	}
	return cfg.CurrentContext, nil
}

// contextEndpoint reads contexts/meta/<sha256(name)>/meta.json.
func contextEndpoint(configDir, name, source string) (Endpoint, error) {
	sum := sha256.Sum256([]byte(name))
	path := filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Endpoint{}, fmt.Errorf("docker context %q (from %s) does not exist: no %s; run `docker context ls` and `docker context use <name>`", name, source, path)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("read docker context %q: %w", name, err)
	}
	var meta struct {
		Name      string `json:"Name"`
		Endpoints map[string]struct {
			Host string `json:"Host"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return Endpoint{}, fmt.Errorf("docker context file %s is not valid JSON (%v): fix it or run `docker context rm %s`", path, err, name)
	}
	host := meta.Endpoints["docker"].Host
	if host == "" {
		return Endpoint{}, fmt.Errorf("docker context %q (%s) has no docker endpoint host", name, path)
	}
	return Endpoint{
		Host:    host,
		Context: name,
		Source:  fmt.Sprintf("context %s (%s)", name, path),
		Product: productOf(name, host),
	}, nil
}

// productOf guesses the product from a context name and engine address;
// they are only contexts to Docker, but their problems and fixes differ.
func productOf(context, host string) string {
	c, h := strings.ToLower(context), strings.ToLower(host)
	switch {
	case strings.Contains(c, "orbstack") || strings.Contains(h, "orbstack"):
		return ProductOrbStack
	case strings.Contains(c, "colima") || strings.Contains(h, "colima"):
		return ProductColima
	case strings.Contains(c, "rancher") || strings.Contains(h, "/.rd/"):
		return ProductRancherDesktop
	case c == "desktop-linux" || strings.Contains(c, "docker-desktop") ||
		strings.Contains(h, "/.docker/run/docker.sock") || strings.Contains(h, "docker-desktop"):
		return ProductDockerDesktop
	}
	return ProductEngine
}
