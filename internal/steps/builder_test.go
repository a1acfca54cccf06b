package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/sshkeys"
	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// engineMachine is a Linux machine talking to a fake engine.
func engineMachine(t *testing.T) (*testMachine, *dockertest.Fake) {
	t.Helper()
	m := newMachine(t, "linux")
	f := &dockertest.Fake{EndpointValue: docker.Endpoint{Host: "unix:///var/run/docker.sock", Product: docker.ProductEngine, Source: "default socket"}}
	m.env.DockerClient = f
	return m, f
}

// contextHash is the hash of the build context the image step uses.
func contextHash(t *testing.T, env *Env) string {
	t.Helper()
	bc, _, err := env.buildContext()
	if err != nil {
		t.Fatal(err)
	}
	return bc.Hash
}

func TestImagePresent(t *testing.T) {
	m, f := engineMachine(t)
	hash := contextHash(t, m.env)
	ref := docker.ImageRef(m.env.Name, hash)
	f.InspectImageFunc = func(_ context.Context, got string) (docker.Image, error) {
		if got != ref {
			return docker.Image{}, dockertest.NotFound(got)
		}
		return docker.Image{ID: "sha256:1", Tags: []string{ref}, Labels: map[string]string{docker.LabelManaged: "true", docker.LabelAssetsHash: hash}}, nil
	}
	sum, _ := m.runSteps(plan.Setup, "image")
	if r := sum.Results["image"]; r.Status != plan.OK {
		t.Fatalf("image = %v %q", r.Status, r.Detail)
	}
	if n := f.Called("BuildImage"); n != 0 {
		t.Errorf("BuildImage called %d times for a present image", n)
	}
	if got, _ := Fact[string](m.env.Facts, factImageRef); got != ref {
		t.Errorf("fact %s = %q, want %q", factImageRef, got, ref)
	}
}

func TestImageMissingIsBuiltOnce(t *testing.T) {
	m, f := engineMachine(t)
	hash := contextHash(t, m.env)
	ref := docker.ImageRef(m.env.Name, hash)
	var mu sync.Mutex
	built := false
	var req docker.BuildRequest
	f.InspectImageFunc = func(_ context.Context, got string) (docker.Image, error) {
		mu.Lock()
		defer mu.Unlock()
		if !built || got != ref {
			return docker.Image{}, dockertest.NotFound(got)
		}
		return docker.Image{ID: "sha256:2", Tags: req.Tags, Labels: req.Labels}, nil
	}
	f.BuildImageFunc = func(_ context.Context, r docker.BuildRequest, log func(string)) error {
		mu.Lock()
		defer mu.Unlock()
		built, req = true, r
		log("Step 1/5 : FROM nixos/nix")
		return nil
	}
	r := m.check("image")
	if r.Status != plan.NeedsApply {
		t.Fatalf("image = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, ref)
	if f.Called("BuildImage") != 0 {
		t.Fatal("check built the image")
	}
	sum, rec := m.runSteps(plan.Setup, "image")
	if got := sum.Results["image"]; got.Status != plan.Applied {
		t.Fatalf("setup: image %v %q", got.Status, got.Detail)
	}
	if n := f.Called("BuildImage"); n != 1 {
		t.Errorf("BuildImage called %d times, want once", n)
	}
	if len(req.Tags) != 1 || req.Tags[0] != ref || req.Labels[docker.LabelAssetsHash] != hash || req.Labels[docker.LabelManaged] != "true" || len(req.Context) == 0 {
		t.Errorf("build request: tags %q labels %v, %d bytes of context", req.Tags, req.Labels, len(req.Context))
	}
	logged := false
	for _, ev := range rec.events {
		if ev.Type == plan.EventLog && ev.ID == "image" && strings.Contains(ev.Line, "FROM nixos/nix") {
			logged = true
		}
	}
	if !logged {
		t.Error("the build output was not streamed as log events")
	}
}

// containerMachine is an engine machine whose image step has run.
func containerMachine(t *testing.T) (*testMachine, *dockertest.Fake) {
	t.Helper()
	m, f := engineMachine(t)
	m.env.Port = testenv.FreePort(t)
	m.env.Facts.Set(factImageRef, docker.ImageRef(m.env.Name, "0123456789abcdef"))
	m.env.Facts.Set(factImageHash, "0123456789abcdef")
	f.ListContainersFunc = func(context.Context, docker.ContainerFilter) ([]docker.ContainerSummary, error) { return nil, nil }
	return m, f
}

func TestContainerMissing(t *testing.T) {
	m, f := containerMachine(t)
	f.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		return docker.Container{}, dockertest.NotFound("container " + name)
	}
	r := m.check("container")
	if r.Status != plan.NeedsApply {
		t.Fatalf("container = %v %q %q, want needs-apply", r.Status, r.Detail, r.Hint)
	}
	contains(t, "detail", r.Detail, "does not exist")
	if len(r.Changes) != 1 || r.Changes[0].Kind != plan.ChangeContainer {
		t.Fatalf("changes = %+v", r.Changes)
	}
	contains(t, "change", r.Changes[0].Summary, "127.0.0.1:"+strconv.Itoa(m.env.Port))
	for _, c := range f.Calls() {
		if c == "CreateContainer" || c == "StartContainer" || c == "RemoveContainer" || c == "CreateVolume" {
			t.Errorf("check called %s", c)
		}
	}
}

func TestContainerPortTakenByProcess(t *testing.T) {
	m, f := containerMachine(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m.env.Port = l.Addr().(*net.TCPAddr).Port
	f.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		return docker.Container{}, dockertest.NotFound("container " + name)
	}
	sum, _ := m.runSteps(plan.Setup, "container")
	r := sum.Results["container"]
	if r.Status != plan.Blocked || sum.Exit != plan.ExitBlocked {
		t.Fatalf("container = %v %q, exit %d; want blocked", r.Status, r.Detail, sum.Exit)
	}
	contains(t, "detail", r.Detail, strconv.Itoa(m.env.Port))
	contains(t, "detail", r.Detail, "another program")
	contains(t, "hint", r.Hint, "--port")
	if f.Called("CreateContainer") != 0 {
		t.Error("created a container on a taken port")
	}
}

func TestContainerPortTakenByOtherContainer(t *testing.T) {
	m, f := containerMachine(t)
	f.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		return docker.Container{}, dockertest.NotFound("container " + name)
	}
	f.ListContainersFunc = func(_ context.Context, flt docker.ContainerFilter) ([]docker.ContainerSummary, error) {
		if flt.PublishedPort != m.env.Port {
			return nil, nil
		}
		return []docker.ContainerSummary{{ID: "abc", Name: "other-builder", State: "running"}}, nil
	}
	r := m.check("container")
	if r.Status != plan.Blocked {
		t.Fatalf("container = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "other-builder")
	contains(t, "hint", r.Hint, "--port")
}

func TestContainerForeignBlocked(t *testing.T) {
	m, f := containerMachine(t)
	f.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		return docker.Container{ID: "f00", Name: name, Image: "postgres:16", State: "running", Running: true, Labels: map[string]string{}}, nil
	}
	sum, _ := m.runSteps(plan.Setup, "container")
	r := sum.Results["container"]
	if r.Status != plan.Blocked {
		t.Fatalf("container = %v %q, want blocked", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "--name")
	for _, c := range f.Calls() {
		if c == "RemoveContainer" || c == "StopContainer" || c == "CreateContainer" {
			t.Errorf("touched a foreign container: %s", c)
		}
	}
}

func TestContainerHealthy(t *testing.T) {
	m, f := containerMachine(t)
	spec, _ := m.env.containerSpec()
	spec.Port = m.env.Port
	f.InspectContainerFunc = func(context.Context, string) (docker.Container, error) { return dockertest.HealthyContainer(spec), nil }
	f.InspectVolumeFunc = func(_ context.Context, name string) (docker.Volume, error) {
		return docker.Volume{Name: name, Labels: map[string]string{docker.LabelManaged: "true", docker.LabelSeededFrom: spec.AssetsHash}}, nil
	}
	f.ExecFunc = func(_ context.Context, _ string, argv []string) (docker.ExecResult, error) {
		switch strings.Join(argv, " ") {
		case "uname -m":
			return docker.ExecResult{Stdout: []byte("aarch64\n")}, nil
		case "nproc":
			return docker.ExecResult{Stdout: []byte("6\n")}, nil
		case "test -e /dev/kvm":
			return docker.ExecResult{ExitCode: 1}, nil
		case "ls /proc/sys/fs/binfmt_misc":
			return docker.ExecResult{Stdout: []byte("status register\n")}, nil
		}
		return docker.ExecResult{}, fmt.Errorf("unexpected exec %q", argv)
	}
	r := m.check("container")
	if r.Status != plan.OK {
		t.Fatalf("container = %v %q", r.Status, r.Detail)
	}
	if s, _ := Fact[[]string](m.env.Facts, factBuilderSystems); strings.Join(s, ",") != "aarch64-linux" {
		t.Errorf("systems = %q, want aarch64-linux only (no binfmt handler)", s)
	}
	if n, _ := Fact[int](m.env.Facts, factBuilderCPUs); n != 6 {
		t.Errorf("cpus = %d, want 6", n)
	}
	if feats, _ := Fact[[]string](m.env.Facts, factBuilderFeatures); strings.Contains(strings.Join(feats, ","), "kvm") {
		t.Errorf("features %q advertise kvm without /dev/kvm", feats)
	}
}

func TestAuthorizedKeyWrong(t *testing.T) {
	m, f := engineMachine(t)
	ours, _ := newHostKey(t)
	other, _ := newHostKey(t)
	m.env.Facts.Set(factKeyPublic, ours)
	want := sshkeys.PublicLine(ours, sshkeys.KeyComment(m.env.Name))
	var mu sync.Mutex
	content := sshkeys.PublicLine(other, "old@laptop")
	var writes []string
	f.ReadFileFunc = func(_ context.Context, container, path string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if container != m.env.Name || path != docker.AuthorizedKeysPath {
			return nil, dockertest.NotFound(path)
		}
		return content, nil
	}
	f.WriteFileFunc = func(_ context.Context, container, path string, data []byte, mode fs.FileMode) error {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, fmt.Sprintf("%s:%s %04o %q", container, path, mode, data))
		content = data
		return nil
	}
	r := m.check("authorized-key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("authorized-key = %v %q, want needs-apply", r.Status, r.Detail)
	}
	if f.Called("WriteFile") != 0 {
		t.Fatal("check wrote authorized_keys")
	}
	sum, _ := m.runSteps(plan.Setup, "authorized-key")
	if got := sum.Results["authorized-key"]; got.Status != plan.Applied {
		t.Fatalf("setup: %v %q", got.Status, got.Detail)
	}
	wantWrite := fmt.Sprintf("%s:%s %04o %q", m.env.Name, docker.AuthorizedKeysPath, 0o600, want)
	if len(writes) != 1 || writes[0] != wantWrite {
		t.Errorf("writes = %q, want exactly [%s]", writes, wantWrite)
	}
}

func TestAuthorizedKeyMissingIsWritten(t *testing.T) {
	m, f := engineMachine(t)
	ours, _ := newHostKey(t)
	m.env.Facts.Set(factKeyPublic, ours)
	f.ReadFileFunc = func(_ context.Context, _, path string) ([]byte, error) { return nil, dockertest.NotFound(path) }
	r := m.check("authorized-key")
	if r.Status != plan.NeedsApply {
		t.Fatalf("authorized-key = %v %q, want needs-apply", r.Status, r.Detail)
	}
	contains(t, "detail", r.Detail, "does not accept our key")
}

// sshServer serves SSH handshakes on 127.0.0.1 with host key signer and
// returns its port.
func sshServer(t *testing.T, signer ssh.Signer) int {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: false, PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no")
	}}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _, _, _ = ssh.NewServerConn(c, cfg)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHostKey(t *testing.T) {
	pinned, signer := newHostKey(t)
	_, impostor := newHostKey(t)
	for _, tc := range []struct {
		name   string
		server ssh.Signer
		want   plan.Status
	}{
		{"matches", signer, plan.OK},
		{"impostor", impostor, plan.Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := engineMachine(t)
			m.env.Port = sshServer(t, tc.server)
			f.ReadFileFunc = func(_ context.Context, container, path string) ([]byte, error) {
				if container != m.env.Name || path != docker.HostPublicKeyPath {
					return nil, dockertest.NotFound(path)
				}
				return sshkeys.PublicLine(pinned, "root@nixbuilder"), nil
			}
			r := m.check("host-key")
			if r.Status != tc.want {
				t.Fatalf("host-key = %v %q %q, want %v", r.Status, r.Detail, r.Hint, tc.want)
			}
			if tc.want == plan.OK {
				contains(t, "detail", r.Detail, sshkeys.Fingerprint(pinned))
				if k, ok := Fact[ssh.PublicKey](m.env.Facts, factHostKey); !ok || sshkeys.Fingerprint(k) != sshkeys.Fingerprint(pinned) {
					t.Errorf("pinned fact = %v", k)
				}
			} else {
				contains(t, "hint", r.Hint, strconv.Itoa(m.env.Port))
			}
		})
	}
}

func TestHostKeyUnreadable(t *testing.T) {
	m, f := engineMachine(t)
	f.ReadFileFunc = func(_ context.Context, _, path string) ([]byte, error) { return nil, dockertest.NotFound(path) }
	r := m.check("host-key")
	if r.Status != plan.Failed {
		t.Fatalf("host-key = %v %q", r.Status, r.Detail)
	}
	contains(t, "hint", r.Hint, "repair")
	if _, ok := Fact[ssh.PublicKey](m.env.Facts, factHostKey); ok {
		t.Error("a host key was pinned without reading one")
	}
}

// TestDockerStepRealEngine runs the docker step against the machine's
// engine, through the endpoint the docker CLI would choose.
func TestDockerStepRealEngine(t *testing.T) {
	testenv.NeedDocker(t)
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}} {{.NCPU}}").Output()
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("docker info printed %q", out)
	}
	m := newMachine(t, "linux")
	home, _ := os.UserHomeDir()
	m.env.Paths = host.NewPaths("/", "linux", os.Getenv, home)
	r := m.check("docker")
	if r.Status != plan.OK {
		t.Fatalf("docker = %v %q %q", r.Status, r.Detail, r.Hint)
	}
	contains(t, "detail", r.Detail, f[0])
	contains(t, "detail", r.Detail, f[1]+" CPUs")
	m.env.DockerClient.Close()
}
