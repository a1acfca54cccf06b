package docker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
)

var testSpec = docker.ContainerSpec{
	Name:       "nixbuilder",
	Image:      "nixbuilder:0123456789ab",
	AssetsHash: "0123456789abcdef",
	Port:       2222,
	Privilege:  docker.PrivilegeFull,
}

func TestDiffContainer(t *testing.T) {
	tests := []struct {
		name   string
		change func(*docker.Container)
		found  bool
		want   []string // substrings, one per drift
		fix    docker.Fix
	}{
		{name: "healthy", found: true},
		{name: "missing", want: []string{"does not exist"}, fix: docker.FixCreate},
		{name: "stopped", found: true, change: func(c *docker.Container) { c.Running, c.State = false, "exited" }, want: []string{"is not running (exited)"}, fix: docker.FixStart},
		{name: "wrong image", found: true, change: func(c *docker.Container) { c.Image = "nixbuilder:old" }, want: []string{"runs image nixbuilder:old"}, fix: docker.FixRecreate},
		{name: "wrong hash label", found: true, change: func(c *docker.Container) { c.Labels[docker.LabelAssetsHash] = "x" }, want: []string{"assets-hash"}, fix: docker.FixRecreate},
		{name: "wrong port", found: true, change: func(c *docker.Container) {
			c.Ports[0].HostPort = "2223"
			c.Labels[docker.LabelPort] = "2223"
		}, want: []string{"127.0.0.1:2223, want 127.0.0.1:2222", "label org.nixbuilder.port"}, fix: docker.FixRecreate},
		{name: "all interfaces", found: true, change: func(c *docker.Container) { c.Ports[0].HostIP = "0.0.0.0" }, want: []string{"0.0.0.0:2222, reachable from other machines"}, fix: docker.FixRecreate},
		{name: "empty host ip", found: true, change: func(c *docker.Container) { c.Ports[0].HostIP = "" }, want: []string{"0.0.0.0:2222"}, fix: docker.FixRecreate},
		{name: "unpublished", found: true, change: func(c *docker.Container) { c.Ports = nil }, want: []string{"not published"}, fix: docker.FixRecreate},
		{name: "restart policy", found: true, change: func(c *docker.Container) { c.RestartPolicy = "" }, want: []string{`restart policy "no"`}, fix: docker.FixRecreate},
		{name: "not privileged", found: true, change: func(c *docker.Container) { c.Privileged = false }, want: []string{"neither privileged nor"}, fix: docker.FixRecreate},
		{name: "caps fallback accepted", found: true, change: func(c *docker.Container) {
			c.Privileged = false
			c.CapAdd = []string{"CAP_SYS_ADMIN"}
			c.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
			c.SystemPathsUnconfined = true
		}},
		{name: "caps without systempaths", found: true, change: func(c *docker.Container) {
			c.Privileged = false
			c.CapAdd = []string{"SYS_ADMIN"}
			c.SecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
		}, want: []string{"neither privileged nor"}, fix: docker.FixRecreate},
		{name: "no init", found: true, change: func(c *docker.Container) { c.Init = false }, want: []string{"without an init"}, fix: docker.FixRecreate},
		{name: "missing store volume", found: true, change: func(c *docker.Container) { c.Mounts = c.Mounts[:1] }, want: []string{"volume nixbuilder-nix at /nix"}, fix: docker.FixRecreate},
		{name: "state as bind mount", found: true, change: func(c *docker.Container) { c.Mounts[0].Type = "bind" }, want: []string{"volume nixbuilder-state at /var/lib/nixbuilder"}, fix: docker.FixRecreate},
		{name: "label missing", found: true, change: func(c *docker.Container) { delete(c.Labels, docker.LabelManaged) }, want: []string{"lacks the label"}, fix: docker.FixRecreate},
		{name: "stopped and drifted: recreate only", found: true, change: func(c *docker.Container) {
			c.Running, c.State = false, "exited"
			c.RestartPolicy = "always"
		}, want: []string{"restart policy"}, fix: docker.FixRecreate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dockertest.HealthyContainer(testSpec)
			if tt.change != nil {
				tt.change(&c)
			}
			d := docker.DiffContainer(testSpec, c, tt.found)
			if len(d) != len(tt.want) {
				t.Fatalf("drifts %q, want %d matching %q", docker.Reasons(d), len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(d[i].Reason, w) {
					t.Errorf("drift %d %q does not contain %q", i, d[i].Reason, w)
				}
				if d[i].Fix != tt.fix {
					t.Errorf("drift %d fix %v, want %v", i, d[i].Fix, tt.fix)
				}
			}
		})
	}
}

func TestDiffContainerNoSandbox(t *testing.T) {
	spec := testSpec
	spec.Privilege = docker.PrivilegeNoSandbox
	c := dockertest.HealthyContainer(spec)
	if d := docker.DiffContainer(spec, c, true); len(d) != 0 {
		t.Fatalf("healthy no-sandbox container drifts: %q", docker.Reasons(d))
	}
	if !slices.Contains(c.Env, "NIXBUILDER_SANDBOX=false") {
		t.Fatalf("env %q lacks the sandbox switch", c.Env)
	}
	// A sandboxed container where the caller asked for no sandbox (and the
	// reverse) must be recreated.
	sandboxed := dockertest.HealthyContainer(testSpec)
	if d := docker.DiffContainer(spec, sandboxed, true); len(d) != 1 || !strings.Contains(d[0].Reason, "sandbox on") {
		t.Errorf("drifts %q", docker.Reasons(d))
	}
	if d := docker.DiffContainer(testSpec, c, true); len(d) == 0 {
		t.Error("no-sandbox container accepted for a privileged spec")
	}
}

// engineFake is a tiny in-memory engine on top of dockertest.Fake.
type engineFake struct {
	*dockertest.Fake
	containers map[string]docker.Container
	volumes    map[string]docker.Volume
	refuse     bool // refuse privileged containers as a sandboxed engine does
}

func newEngineFake() *engineFake {
	e := &engineFake{Fake: &dockertest.Fake{}, containers: map[string]docker.Container{}, volumes: map[string]docker.Volume{}}
	e.InspectContainerFunc = func(_ context.Context, name string) (docker.Container, error) {
		c, ok := e.containers[name]
		if !ok {
			return c, dockertest.NotFound("container " + name)
		}
		return c, nil
	}
	e.CreateContainerFunc = func(_ context.Context, spec docker.ContainerSpec) error {
		if _, ok := e.containers[spec.Name]; ok {
			return errors.New("conflict")
		}
		c := dockertest.HealthyContainer(spec)
		c.Running, c.State = false, "created"
		e.containers[spec.Name] = c
		return nil
	}
	e.StartContainerFunc = func(_ context.Context, name string) error {
		c := e.containers[name]
		if e.refuse && c.Privileged {
			return errors.New("Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted: unknown")
		}
		c.Running, c.State = true, "running"
		e.containers[name] = c
		return nil
	}
	e.RemoveContainerFunc = func(_ context.Context, name string) error {
		delete(e.containers, name)
		return nil
	}
	e.InspectVolumeFunc = func(_ context.Context, name string) (docker.Volume, error) {
		v, ok := e.volumes[name]
		if !ok {
			return v, dockertest.NotFound("volume " + name)
		}
		return v, nil
	}
	e.CreateVolumeFunc = func(_ context.Context, name string, labels map[string]string) error {
		e.volumes[name] = docker.Volume{Name: name, Labels: labels}
		return nil
	}
	return e
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	e := newEngineFake()
	p, err := docker.Reconcile(ctx, e, testSpec)
	if err != nil || p != docker.PrivilegeFull {
		t.Fatalf("Reconcile = %v, %v", p, err)
	}
	if got := e.volumes["nixbuilder-nix"].Labels[docker.LabelSeededFrom]; got != testSpec.AssetsHash {
		t.Errorf("store volume seeded-from label %q", got)
	}
	if e.volumes["nixbuilder-state"].Labels[docker.LabelManaged] != "true" {
		t.Errorf("state volume not labelled")
	}
	// Second run: nothing to do, no create or start.
	before := len(e.Calls())
	if _, err := docker.Reconcile(ctx, e, testSpec); err != nil {
		t.Fatal(err)
	}
	if calls := e.Calls()[before:]; !slices.Equal(calls, []string{"InspectContainer"}) {
		t.Errorf("second Reconcile made calls %q", calls)
	}
	// Stopped: start only.
	c := e.containers["nixbuilder"]
	c.Running, c.State = false, "exited"
	e.containers["nixbuilder"] = c
	before = len(e.Calls())
	if _, err := docker.Reconcile(ctx, e, testSpec); err != nil {
		t.Fatal(err)
	}
	if calls := e.Calls()[before:]; !slices.Equal(calls, []string{"InspectContainer", "StartContainer"}) {
		t.Errorf("stopped: calls %q", calls)
	}
	// Drifted: recreate, volumes kept.
	spec2 := testSpec
	spec2.Port = 2300
	before = len(e.Calls())
	if _, err := docker.Reconcile(ctx, e, spec2); err != nil {
		t.Fatal(err)
	}
	calls := e.Calls()[before:]
	if !slices.Contains(calls, "RemoveContainer") || !slices.Contains(calls, "CreateContainer") || slices.Contains(calls, "RemoveVolume") {
		t.Errorf("drifted: calls %q", calls)
	}
	if e.containers["nixbuilder"].Ports[0].HostPort != "2300" {
		t.Errorf("not recreated on the new port")
	}
}

func TestReconcileLadder(t *testing.T) {
	e := newEngineFake()
	e.refuse = true
	p, err := docker.Reconcile(context.Background(), e, testSpec)
	if err != nil {
		t.Fatal(err)
	}
	if p != docker.PrivilegeCaps {
		t.Fatalf("privilege %v, want %v", p, docker.PrivilegeCaps)
	}
	c := e.containers["nixbuilder"]
	if c.Privileged || !c.Running || docker.ContainerPrivilege(c) != docker.PrivilegeCaps {
		t.Errorf("container %+v", c)
	}
	if c.Labels[docker.LabelPrivilege] != "sys-admin" {
		t.Errorf("privilege label %q", c.Labels[docker.LabelPrivilege])
	}
	// The fallback container is healthy for the privileged spec: no loop.
	if d := docker.DiffContainer(testSpec, c, true); len(d) != 0 {
		t.Errorf("fallback container drifts: %q", docker.Reasons(d))
	}
	// Other start errors are not stepped down.
	e2 := newEngineFake()
	e2.StartContainerFunc = func(context.Context, string) error { return errors.New("port is already allocated") }
	if _, err := docker.Reconcile(context.Background(), e2, testSpec); err == nil || e2.Called("CreateContainer") != 1 {
		t.Errorf("err %v, creates %d", err, e2.Called("CreateContainer"))
	}
}

func TestReconcileForeign(t *testing.T) {
	e := newEngineFake()
	e.containers["nixbuilder"] = docker.Container{Name: "nixbuilder", Labels: map[string]string{"other": "x"}}
	_, err := docker.Reconcile(context.Background(), e, testSpec)
	var fe *docker.ForeignError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("err = %v, want a ForeignError naming --name", err)
	}
	if e.Called("RemoveContainer") != 0 || e.Called("CreateContainer") != 0 {
		t.Errorf("foreign container touched: %q", e.Calls())
	}
	if err := docker.Uninstall(context.Background(), e, "nixbuilder", false); !errors.As(err, &fe) {
		t.Errorf("Uninstall of a foreign container: %v", err)
	}
}

func TestEnsureImage(t *testing.T) {
	fsys, err := dockertest.TestBuilderContext()
	if err != nil {
		t.Fatal(err)
	}
	bc, err := docker.NewBuildContext(fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]docker.Image{}
	f := &dockertest.Fake{
		InspectImageFunc: func(_ context.Context, ref string) (docker.Image, error) {
			img, ok := images[ref]
			if !ok {
				return img, dockertest.NotFound(ref)
			}
			return img, nil
		},
		BuildImageFunc: func(_ context.Context, req docker.BuildRequest, log func(string)) error {
			log("Step 1/1 : FROM x")
			images[req.Tags[0]] = docker.Image{Tags: req.Tags, Labels: req.Labels}
			return nil
		},
	}
	var lines []string
	ref, built, err := docker.EnsureImage(context.Background(), f, "nb", bc, func(l string) { lines = append(lines, l) })
	if err != nil || !built || ref != "nb:"+bc.Hash[:12] || len(lines) != 1 {
		t.Fatalf("first EnsureImage = %q %v %v, log %q", ref, built, err, lines)
	}
	if _, built, err = docker.EnsureImage(context.Background(), f, "nb", bc, nil); err != nil || built {
		t.Fatalf("second EnsureImage built=%v err=%v", built, err)
	}
	if n := f.Called("BuildImage"); n != 1 {
		t.Errorf("%d build calls, want 1", n)
	}
	// A tag without our label (or with another hash) is rebuilt.
	images[ref] = docker.Image{Labels: map[string]string{docker.LabelManaged: "true", docker.LabelAssetsHash: "other"}}
	if ok, err := docker.ImageStatus(context.Background(), f, "nb", bc); ok || err != nil {
		t.Errorf("ImageStatus with a foreign hash = %v, %v", ok, err)
	}
}

func TestFindPortHolderContainer(t *testing.T) {
	f := &dockertest.Fake{ListContainersFunc: func(_ context.Context, flt docker.ContainerFilter) ([]docker.ContainerSummary, error) {
		if flt.PublishedPort != 2222 {
			t.Errorf("filter %+v", flt)
		}
		return []docker.ContainerSummary{{Name: "other-builder", State: "running"}}, nil
	}}
	h, err := docker.FindPortHolder(context.Background(), f, 2222)
	if err != nil || h.Container != "other-builder" || h.Managed || h.Free() {
		t.Fatalf("holder %+v, %v", h, err)
	}
}
