package steps

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
)

// ladderEngine is a fake engine where the container is created as asked
// and the in-container sandboxed probe build succeeds or not.
func ladderEngine(t *testing.T, sandboxWorks bool) (*testMachine, *dockertest.Fake, *[]docker.Privilege) {
	m, f := containerMachine(t)
	var created []docker.Privilege
	var current *docker.Container
	files := map[string][]byte{}
	f.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		if current == nil {
			return docker.Container{}, dockertest.NotFound("container " + name)
		}
		return *current, nil
	}
	f.InspectVolumeFunc = func(_ context.Context, name string) (docker.Volume, error) {
		return docker.Volume{Name: name, Labels: map[string]string{docker.LabelManaged: "true"}}, nil
	}
	f.CreateVolumeFunc = func(context.Context, string, map[string]string) error { return nil }
	f.CreateContainerFunc = func(_ context.Context, spec docker.ContainerSpec) error {
		created = append(created, spec.Privilege)
		c := dockertest.HealthyContainer(spec)
		current = &c
		return nil
	}
	f.StartContainerFunc = func(context.Context, string) error { return nil }
	f.RemoveContainerFunc = func(context.Context, string) error { current = nil; return nil }
	f.WriteFileFunc = func(_ context.Context, _, path string, data []byte, _ fs.FileMode) error {
		files[path] = data
		return nil
	}
	f.ReadFileFunc = func(_ context.Context, _, path string) ([]byte, error) {
		if b, ok := files[path]; ok {
			return b, nil
		}
		if path == factsCache {
			return nil, dockertest.NotFound(path)
		}
		if strings.HasPrefix(path, "/nix/store/") {
			return []byte("Linux localhost nixbuilder-marker\n"), nil
		}
		return []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl nixbuilder\n"), nil
	}
	f.ExecFunc = func(_ context.Context, _ string, argv []string) (docker.ExecResult, error) {
		switch cmd := strings.Join(argv, " "); {
		case cmd == "uname -m":
			return docker.ExecResult{Stdout: []byte("x86_64\n")}, nil
		case cmd == "nproc":
			return docker.ExecResult{Stdout: []byte("4\n")}, nil
		case cmd == "test -e /dev/kvm":
			return docker.ExecResult{ExitCode: 1}, nil
		case cmd == "ls /proc/sys/fs/binfmt_misc":
			return docker.ExecResult{Stdout: []byte("status register\n")}, nil
		case argv[0] == "nix-build":
			if !sandboxWorks {
				return docker.ExecResult{ExitCode: 1, Stderr: []byte("error: unable to start build process: Operation not permitted\n")}, nil
			}
			return docker.ExecResult{Stdout: []byte("/nix/store/abc-nixbuilder-probe\n")}, nil
		}
		return docker.ExecResult{}, fmt.Errorf("unexpected exec %q", argv)
	}
	return m, f, &created
}

func TestContainerApplyKeepsSandboxWhenItWorks(t *testing.T) {
	m, _, created := ladderEngine(t, true)
	if err := m.apply("container"); err != nil {
		t.Fatal(err)
	}
	if len(*created) != 1 || (*created)[0] != docker.PrivilegeFull {
		t.Errorf("created %v, want one privileged container", *created)
	}
}

// The last rung: the sandboxed probe build fails, so the builder is made
// again with the sandbox off, and the next check accepts it as it is
// instead of re-creating it on every run.
func TestContainerApplyFallsBackToNoSandbox(t *testing.T) {
	m, _, created := ladderEngine(t, false)
	if err := m.apply("container"); err != nil {
		t.Fatal(err)
	}
	if n := len(*created); n != 2 || (*created)[1] != docker.PrivilegeNoSandbox {
		t.Fatalf("created %v, want a privileged container, then one without the sandbox", *created)
	}
	r := m.check("container")
	if !r.Status.Good() {
		t.Fatalf("container after the fallback = %v %q; want it accepted", r.Status, r.Detail)
	}
	if !strings.Contains(r.Warning, "sandbox OFF") {
		t.Errorf("warning %q does not say the sandbox is off", r.Warning)
	}
}

// After Apply measured the builder, checks read the facts from the cache
// in the state volume and run nothing in the container.
func TestContainerCheckUsesFactsCache(t *testing.T) {
	m, f, _ := ladderEngine(t, true)
	if err := m.apply("container"); err != nil {
		t.Fatal(err)
	}
	execs := f.Called("Exec")
	r := m.check("container")
	if !r.Status.Good() {
		t.Fatalf("container = %v %q", r.Status, r.Detail)
	}
	if n := f.Called("Exec") - execs; n != 0 {
		t.Errorf("the check ran %d commands in the container; want the cached facts", n)
	}
	if s, _ := Fact[[]string](m.env.Facts, factBuilderSystems); len(s) != 1 || s[0] != "x86_64-linux" {
		t.Errorf("systems from the cache = %v", s)
	}
}
