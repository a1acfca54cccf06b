package docker_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"testing/fstest"

	"golang.org/x/crypto/ssh"

	"github.com/nixbuilder/nixbuilder-setup/assets"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// countingClient counts engine build calls.
type countingClient struct {
	docker.Client
	builds atomic.Int32
}

func (c *countingClient) BuildImage(ctx context.Context, req docker.BuildRequest, log func(string)) error {
	c.builds.Add(1)
	return c.Client.BuildImage(ctx, req, log)
}

func connect(t *testing.T) *docker.Engine {
	t.Helper()
	ep, err := docker.ResolveEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	e, err := docker.Connect(ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func uniqueName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "nbtest-" + hex.EncodeToString(b)
}

// cleanup removes everything named after name, whatever the test left.
func cleanup(t *testing.T, name string) {
	t.Cleanup(func() {
		exec.Command("docker", "rm", "-f", name, name+"-foreign").Run()
		exec.Command("docker", "volume", "rm", "-f", name+"-state", name+"-nix").Run()
		out, _ := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name).Output()
		for _, ref := range strings.Fields(string(out)) {
			exec.Command("docker", "rmi", "-f", ref).Run()
		}
	})
}

func testContext(t *testing.T, extraArgs map[string]string) docker.BuildContext {
	t.Helper()
	fsys, err := dockertest.TestBuilderContext()
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{"BASE_IMAGE": testenv.TestBaseImage()}
	for k, v := range extraArgs {
		args[k] = v
	}
	bc, err := docker.NewBuildContext(fsys, args)
	if err != nil {
		t.Fatal(err)
	}
	return bc
}

// sshRun logs in with key, trusting only hostKey, and runs cmd.
func sshRun(port int, key ed25519.PrivateKey, hostKey ssh.PublicKey, cmd string) (stdout, stderr string, err error) {
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return "", "", err
	}
	cl, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return "", "", err
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	return o.String(), e.String(), err
}

// waitSSH retries until sshd answers with our key (or the deadline).
func waitSSH(t *testing.T, port int, key ed25519.PrivateKey, hostKey ssh.PublicKey) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := sshRun(port, key, hostKey, "true")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh to 127.0.0.1:%d never worked: %v", port, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hostKey reads the builder's public host key through the Docker API,
// waiting for the entrypoint to create it.
func hostKey(t *testing.T, c docker.Client, name string) ssh.PublicKey {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := c.ReadFile(ctx, name, docker.HostPublicKeyPath)
		if err == nil && len(b) > 0 {
			k, _, _, _, err := ssh.ParseAuthorizedKey(b)
			if err != nil {
				t.Fatalf("host key %q: %v", b, err)
			}
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("no host key in container %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitRunning(t *testing.T, c docker.Client, name string, cond func(docker.Container) bool) docker.Container {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ct, err := c.InspectContainer(context.Background(), name)
		if err == nil && ct.Running && cond(ct) {
			return ct
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not come back: %+v %v", name, ct, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var nixStoreVersion = regexp.MustCompile(`^nix-store \(Nix\) \d+\.\d+\S*\n$`)

func TestEngineBuilder(t *testing.T) {
	testenv.NeedTestBaseImage(t)
	ctx := context.Background()
	engine := connect(t)
	c := &countingClient{Client: engine}
	name := uniqueName(t)
	cleanup(t, name)

	info, err := c.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version == "" || info.CPUs < 1 || info.OSType != "linux" {
		t.Fatalf("server info %+v", info)
	}
	t.Logf("engine %s (API %s) on %s/%s, %d CPUs, endpoint %+v", info.Version, info.APIVersion, info.OperatingSystem, info.Arch, info.CPUs, c.Endpoint())

	// Image: built once, then found by its hash.
	bc := testContext(t, nil)
	var lines []string
	ref, built, err := docker.EnsureImage(ctx, c, name, bc, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if !built || len(lines) == 0 || c.builds.Load() != 1 {
		t.Fatalf("first EnsureImage: built=%v, %d log lines, %d builds", built, len(lines), c.builds.Load())
	}
	img, err := c.InspectImage(ctx, ref)
	if err != nil || img.Labels[docker.LabelAssetsHash] != bc.Hash {
		t.Fatalf("image %s: %+v %v", ref, img, err)
	}
	if _, built, err = docker.EnsureImage(ctx, c, name, testContext(t, nil), nil); err != nil || built || c.builds.Load() != 1 {
		t.Fatalf("second EnsureImage: built=%v err=%v builds=%d", built, err, c.builds.Load())
	}

	// Container: privileged, or the capability fallback on engines that
	// refuse privileged containers (as the one these tests were written on).
	port := testenv.FreePort(t)
	spec := docker.ContainerSpec{Name: name, Image: ref, AssetsHash: bc.Hash, Port: port, Privilege: docker.PrivilegeFull,
		Env: []string{"NIXBUILDER_SUBSTITUTERS="}}
	priv, err := docker.Reconcile(ctx, c, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("builder runs at privilege level %s", priv)
	ct, drifts, err := docker.CheckContainer(ctx, c, spec)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("fresh container drifts %q, %v", docker.Reasons(drifts), err)
	}
	if len(ct.Ports) != 1 || ct.Ports[0].HostIP != "127.0.0.1" {
		t.Fatalf("port bindings %+v", ct.Ports)
	}
	out, err := exec.Command("docker", "port", name, "22/tcp").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("docker port: %q %v", out, err)
	}
	if h, err := docker.FindPortHolder(ctx, c, port); err != nil || h.Container != name || !h.Managed {
		t.Errorf("FindPortHolder(%d) = %+v, %v", port, h, err)
	}

	// Our key, through the Docker API, mode 0600.
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	authLine := ssh.MarshalAuthorizedKey(sshPub)
	if err := c.WriteFile(ctx, name, docker.AuthorizedKeysPath, authLine, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadFile(ctx, name, docker.AuthorizedKeysPath); err != nil || !bytes.Equal(got, authLine) {
		t.Fatalf("authorized_keys read back %q, %v", got, err)
	}
	res, err := c.Exec(ctx, name, []string{"stat", "-c", "%a %u %g", docker.AuthorizedKeysPath})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "600 0 0" {
		t.Fatalf("authorized_keys mode/owner %q %q %v", res.Stdout, res.Stderr, err)
	}

	// Real SSH on the published port, host key pinned from the API.
	hk := hostKey(t, c, name)
	waitSSH(t, port, key, hk)
	stdout, stderr, err := sshRun(port, key, hk, "nix-store --version")
	if err != nil || !nixStoreVersion.MatchString(stdout) {
		t.Fatalf("nix-store --version over ssh: stdout %q stderr %q err %v", stdout, stderr, err)
	}
	if stdout, _, err := sshRun(port, key, hk, "nix-daemon --version"); err != nil || !strings.HasPrefix(stdout, "nix-daemon (Nix) ") {
		t.Fatalf("nix-daemon --version over ssh: %q %v", stdout, err)
	}
	// A sandboxed build proves the privilege rung: sandbox-fallback is off.
	probe := fmt.Sprintf(`derivation { name = "nbprobe-%s"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "read h < /proc/sys/kernel/hostname; echo $h > $out" ]; }`, name)
	stdout, stderr, err = sshRun(port, key, hk, "nix-build --no-out-link -E '"+probe+"'")
	if err != nil {
		t.Fatalf("sandboxed probe build: %v\n%s", err, stderr)
	}
	res, err = c.Exec(ctx, name, []string{"cat", strings.TrimSpace(stdout)})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "localhost" {
		t.Fatalf("probe output %q (want the sandbox's hostname localhost), %v", res.Stdout, err)
	}

	facts, err := docker.BuilderFacts(ctx, c, name)
	if err != nil {
		t.Fatal(err)
	}
	wantSys := map[string]string{"amd64": "x86_64-linux", "arm64": "aarch64-linux"}[runtime.GOARCH]
	if facts.CPUs < 1 || (wantSys != "" && facts.System != wantSys) {
		t.Errorf("facts %+v", facts)
	}
	t.Logf("builder facts %+v", facts)

	// docker restart: same host key, still reachable.
	if err := c.RestartContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	if k := hostKey(t, c, name); !bytes.Equal(k.Marshal(), hk.Marshal()) {
		t.Fatal("host key changed across docker restart")
	}
	waitSSH(t, port, key, hk)

	// sshd killed behind Docker's back: the restart policy brings it back.
	pid, err := c.ReadFile(ctx, name, "/run/sshd.pid")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := c.InspectContainer(ctx, name)
	if res, err := c.Exec(ctx, name, []string{"kill", "-KILL", strings.TrimSpace(string(pid))}); err != nil || res.ExitCode != 0 {
		t.Fatalf("kill sshd: %+v %v", res, err)
	}
	waitRunning(t, c, name, func(ct docker.Container) bool { return ct.RestartCount > before.RestartCount })
	if k := hostKey(t, c, name); !bytes.Equal(k.Marshal(), hk.Marshal()) {
		t.Fatal("host key changed across a crash restart")
	}
	waitSSH(t, port, key, hk)

	// Drift: stopped.
	if err := c.StopContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec, docker.FixStart, "is not running (exited)")
	if _, err := docker.Reconcile(ctx, c, spec); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec, 0, "")
	waitSSH(t, port, key, hk)

	// Drift: removed; the volumes keep keys and store.
	if err := c.RemoveContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec, docker.FixCreate, "does not exist")
	if _, err := docker.Reconcile(ctx, c, spec); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec, 0, "")
	if k := hostKey(t, c, name); !bytes.Equal(k.Marshal(), hk.Marshal()) {
		t.Fatal("host key changed across re-creation")
	}
	waitSSH(t, port, key, hk)

	// Drift: wrong port (the spec moves; the container has the old one).
	spec2 := spec
	spec2.Port = testenv.FreePort(t)
	checkDrift(t, c, spec2, docker.FixRecreate, fmt.Sprintf("127.0.0.1:%d, want 127.0.0.1:%d", port, spec2.Port))
	if _, err := docker.Reconcile(ctx, c, spec2); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec2, 0, "")
	waitSSH(t, spec2.Port, key, hk)

	// Drift: wrong image (a changed context gives another image).
	bc3 := testContext(t, map[string]string{"NIXBUILDER_TEST_VARIANT": "2"})
	ref3, built, err := docker.EnsureImage(ctx, c, name, bc3, nil)
	if err != nil || !built || ref3 == ref {
		t.Fatalf("variant image %s built=%v %v", ref3, built, err)
	}
	spec3 := spec2
	spec3.Image, spec3.AssetsHash = ref3, bc3.Hash
	checkDrift(t, c, spec3, docker.FixRecreate, "runs image "+ref)
	if _, err := docker.Reconcile(ctx, c, spec3); err != nil {
		t.Fatal(err)
	}
	checkDrift(t, c, spec3, 0, "")
	vol, err := c.InspectVolume(ctx, spec3.NixVolume())
	if err != nil || vol.Labels[docker.LabelSeededFrom] != bc.Hash {
		t.Errorf("store volume %+v %v: want it kept, seeded from %s", vol, err, bc.Hash)
	}
	waitSSH(t, spec3.Port, key, hk)

	// State volume lost: a new host key, which the pinning must notice.
	if err := c.RemoveContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveVolume(ctx, spec3.StateVolume()); err != nil {
		t.Fatal(err)
	}
	if _, err := docker.Reconcile(ctx, c, spec3); err != nil {
		t.Fatal(err)
	}
	hk2 := hostKey(t, c, name)
	if bytes.Equal(hk2.Marshal(), hk.Marshal()) {
		t.Fatal("host key unchanged after the state volume was lost")
	}
	if _, _, err := sshRun(spec3.Port, key, hk, "true"); err == nil {
		t.Fatal("old pinned host key still accepted")
	}

	// A foreign container with our name is never touched.
	foreign := name + "-foreign"
	if out, err := exec.Command("docker", "create", "--name", foreign, testenv.TestBaseImage(), "true").CombinedOutput(); err != nil {
		t.Fatalf("docker create: %v %s", err, out)
	}
	fspec := spec3
	fspec.Name = foreign
	var fe *docker.ForeignError
	if _, err := docker.Reconcile(ctx, c, fspec); !errors.As(err, &fe) {
		t.Fatalf("Reconcile over a foreign container: %v", err)
	}
	if _, err := c.InspectContainer(ctx, foreign); err != nil {
		t.Fatalf("foreign container gone: %v", err)
	}

	// Uninstall removes exactly ours.
	if err := docker.Uninstall(ctx, c, name, false); err != nil {
		t.Fatal(err)
	}
	for _, obj := range [][]string{{"container", "inspect", name}, {"volume", "inspect", name + "-state"}, {"volume", "inspect", name + "-nix"}, {"image", "inspect", ref}, {"image", "inspect", ref3}} {
		if err := exec.Command("docker", obj...).Run(); err == nil {
			t.Errorf("docker %s: still there after Uninstall", strings.Join(obj, " "))
		}
	}
	if _, err := c.InspectContainer(ctx, foreign); err != nil {
		t.Errorf("Uninstall removed the foreign container: %v", err)
	}
}

func checkDrift(t *testing.T, c docker.Client, spec docker.ContainerSpec, fix docker.Fix, reason string) {
	t.Helper()
	_, d, err := docker.CheckContainer(context.Background(), c, spec)
	if err != nil {
		t.Fatal(err)
	}
	if reason == "" {
		if len(d) != 0 {
			t.Fatalf("unexpected drift %q", docker.Reasons(d))
		}
		return
	}
	if len(d) == 0 || d[0].Fix != fix || !strings.Contains(d[0].Reason, reason) {
		t.Fatalf("drift %+v, want fix %v with %q", d, fix, reason)
	}
}

func TestEngineBuildError(t *testing.T) {
	testenv.NeedTestBaseImage(t)
	c := connect(t)
	name := uniqueName(t)
	cleanup(t, name)
	fsys := fstest.MapFS{"Dockerfile": {Data: []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo first-line; echo marker-output >&2; exit 3\n"), Mode: 0o644}}
	bc, err := docker.NewBuildContext(fsys, map[string]string{"BASE_IMAGE": testenv.TestBaseImage()})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	_, _, err = docker.EnsureImage(context.Background(), c, name, bc, func(l string) { lines = append(lines, l) })
	var be *docker.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("failing RUN: err = %v, want a *BuildError", err)
	}
	tail := strings.Join(be.Tail, "\n")
	if !strings.Contains(tail, "marker-output") || !strings.Contains(tail, "RUN echo") || !strings.Contains(be.Message, "non-zero code: 3") {
		t.Errorf("build error lacks the failing step's output: %v", err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "first-line") {
		t.Errorf("log lines %q", lines)
	}
}

// TestEngineAssetsDockerfile builds the shipped assets/Dockerfile (whose
// default base is nixos/nix, unreachable here) on the Debian test base,
// and checks the result serves SSH logins as the contract says.
func TestEngineAssetsDockerfile(t *testing.T) {
	testenv.NeedTestBaseImage(t)
	ctx := context.Background()
	c := connect(t)
	name := uniqueName(t)
	cleanup(t, name)
	bc, err := docker.NewBuildContext(assets.Context(), map[string]string{"BASE_IMAGE": testenv.TestBaseImage()})
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := docker.EnsureImage(ctx, c, name, bc, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := docker.ContainerSpec{Name: name, Image: ref, AssetsHash: bc.Hash, Port: testenv.FreePort(t), Privilege: docker.PrivilegeFull,
		Env: []string{"NIXBUILDER_SUBSTITUTERS="}}
	if _, err := docker.Reconcile(ctx, c, spec); err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	if err := c.WriteFile(ctx, name, docker.AuthorizedKeysPath, ssh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := hostKey(t, c, name)
	waitSSH(t, spec.Port, key, hk)
	if stdout, stderr, err := sshRun(spec.Port, key, hk, "nix-store --version"); err != nil || !nixStoreVersion.MatchString(stdout) {
		t.Fatalf("nix-store --version: %q %q %v", stdout, stderr, err)
	}
	if err := docker.Uninstall(ctx, c, name, false); err != nil {
		t.Fatal(err)
	}
}

func TestEngineNotFound(t *testing.T) {
	testenv.NeedDocker(t)
	c := connect(t)
	ctx := context.Background()
	name := uniqueName(t)
	if _, err := c.InspectContainer(ctx, name); !errors.Is(err, docker.ErrNotFound) {
		t.Errorf("InspectContainer: %v", err)
	}
	if _, err := c.InspectImage(ctx, name+":x"); !errors.Is(err, docker.ErrNotFound) {
		t.Errorf("InspectImage: %v", err)
	}
	if _, err := c.InspectVolume(ctx, name); !errors.Is(err, docker.ErrNotFound) {
		t.Errorf("InspectVolume: %v", err)
	}
}
