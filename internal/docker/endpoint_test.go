package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	fixtures, err := filepath.Abs("testdata/dockerconfig")
	if err != nil {
		t.Fatal(err)
	}
	// A home with Docker Desktop's per-user socket, and one without.
	desktopHome := t.TempDir()
	if err := os.MkdirAll(filepath.Join(desktopHome, ".docker", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(desktopHome, ".docker", "run", "docker.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	emptyHome := t.TempDir()
	presentSock := filepath.Join(t.TempDir(), "docker.sock")
	if err := os.WriteFile(presentSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	absentSock := filepath.Join(t.TempDir(), "absent.sock")

	tests := []struct {
		name      string
		env       map[string]string
		config    string // fixture dir; "" means DOCKER_CONFIG/HOME
		home      string
		sock      string
		host      string
		context   string
		product   string
		sourceHas string
		errHas    []string
	}{
		{name: "DOCKER_HOST wins over everything", env: map[string]string{"DOCKER_HOST": "tcp://10.0.0.1:2376", "DOCKER_CONTEXT": "colima"},
			config: "current-context", home: emptyHome, sock: presentSock, host: "tcp://10.0.0.1:2376", context: "default", product: ProductEngine, sourceHas: "DOCKER_HOST"},
		{name: "DOCKER_CONTEXT beats currentContext", env: map[string]string{"DOCKER_CONTEXT": "orbstack"},
			config: "current-context", home: emptyHome, sock: presentSock, host: "unix:///Users/me/.orbstack/run/docker.sock", context: "orbstack", product: ProductOrbStack, sourceHas: "meta.json"},
		{name: "currentContext from config.json", config: "current-context", home: emptyHome, sock: presentSock,
			host: "unix:///Users/me/.colima/default/docker.sock", context: "colima", product: ProductColima, sourceHas: "context colima"},
		{name: "Docker Desktop context", env: map[string]string{"DOCKER_CONTEXT": "desktop-linux"}, config: "current-context", home: emptyHome, sock: presentSock,
			host: "unix:///Users/me/.docker/run/docker.sock", context: "desktop-linux", product: ProductDockerDesktop},
		{name: "Rancher Desktop context", env: map[string]string{"DOCKER_CONTEXT": "rancher-desktop"}, config: "current-context", home: emptyHome, sock: presentSock,
			host: "unix:///Users/me/.rd/docker.sock", context: "rancher-desktop", product: ProductRancherDesktop},
		{name: "DOCKER_CONTEXT=default uses the default socket", env: map[string]string{"DOCKER_CONTEXT": "default"}, config: "current-context", home: emptyHome, sock: presentSock,
			host: "unix://" + presentSock, context: "default", product: ProductEngine},
		{name: "no config: default socket", config: "none", home: desktopHome, sock: presentSock,
			host: "unix://" + presentSock, context: "default", product: ProductEngine, sourceHas: "default socket"},
		{name: "currentContext default: default socket", config: "default-context", home: emptyHome, sock: presentSock,
			host: "unix://" + presentSock, context: "default"},
		{name: "no default socket: Docker Desktop's", config: "none", home: desktopHome, sock: absentSock,
			host: "unix://" + filepath.Join(desktopHome, ".docker", "run", "docker.sock"), context: "default", product: ProductDockerDesktop},
		{name: "no socket at all: default socket for the error", config: "none", home: emptyHome, sock: absentSock,
			host: "unix://" + absentSock, context: "default"},
		{name: "DOCKER_CONFIG honoured", env: map[string]string{"DOCKER_CONFIG": filepath.Join(fixtures, "current-context")}, home: emptyHome, sock: presentSock,
			host: "unix:///Users/me/.colima/default/docker.sock", context: "colima"},
		{name: "broken config.json", config: "broken-config", home: emptyHome, sock: presentSock,
			errHas: []string{filepath.Join(fixtures, "broken-config", "config.json"), "not valid JSON", "DOCKER_HOST"}},
		{name: "broken context meta", config: "broken-meta", home: emptyHome, sock: presentSock,
			errHas: []string{"meta.json", "not valid JSON", "docker context rm colima"}},
		{name: "missing context", config: "missing-context", home: emptyHome, sock: presentSock,
			errHas: []string{`"gone"`, "does not exist", "docker context use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Resolver{
				Getenv:        func(k string) string { return tt.env[k] },
				Home:          tt.home,
				DefaultSocket: tt.sock,
			}
			if tt.config != "" {
				r.ConfigDir = filepath.Join(fixtures, tt.config)
			}
			ep, err := r.Resolve()
			if len(tt.errHas) > 0 {
				if err == nil {
					t.Fatalf("Resolve() = %+v, want an error", ep)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.Host != tt.host || ep.Context != tt.context {
				t.Errorf("Resolve() = host %q context %q, want %q %q", ep.Host, ep.Context, tt.host, tt.context)
			}
			if tt.product != "" && ep.Product != tt.product {
				t.Errorf("product = %q, want %q", ep.Product, tt.product)
			}
			if !strings.Contains(ep.Source, tt.sourceHas) {
				t.Errorf("source = %q, want it to contain %q", ep.Source, tt.sourceHas)
			}
		})
	}
}

func TestProductOf(t *testing.T) {
	for _, tt := range []struct{ ctx, host, want string }{
		{"", "unix:///var/run/docker.sock", ProductEngine},
		{"", "unix:///Users/a/.docker/run/docker.sock", ProductDockerDesktop},
		{"", "unix:///Users/a/.orbstack/run/docker.sock", ProductOrbStack},
		{"colima-x86", "unix:///x.sock", ProductColima},
		{"", "unix:///Users/a/.rd/docker.sock", ProductRancherDesktop},
		{"remote", "ssh://me@host", ProductEngine},
	} {
		if got := productOf(tt.ctx, tt.host); got != tt.want {
			t.Errorf("productOf(%q, %q) = %q, want %q", tt.ctx, tt.host, got, tt.want)
		}
	}
}
