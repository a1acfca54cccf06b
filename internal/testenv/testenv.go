// Package testenv lets tests that need a real component (nix, OpenSSH,
// Docker, root) say so. Outside CI a missing component skips the test; in CI
// (CI=true) it fails it, because a skipped test there would hide a broken
// set-up.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// Missing skips the test outside CI and fails it in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// LookPath returns the full path of a program, or stops the test through
// Missing when it is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found on PATH (the README test command installs it)", name)
	}
	return p
}

// NeedRoot stops the test through Missing unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "the test must run as root")
	}
}

// NeedDocker stops the test through Missing unless a Docker Engine answers.
func NeedDocker(t testing.TB) {
	t.Helper()
	LookPath(t, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		Missing(t, "Docker Engine not reachable: %v: %s", err, out)
	}
}

// TestBaseImage is the Debian-based image the real-engine tests build
// builders from; scripts/test-base-image makes it.
func TestBaseImage() string {
	if v := os.Getenv("NIXBUILDER_TEST_BASE"); v != "" {
		return v
	}
	return "nixbuilder-test-base:bookworm"
}

// NeedTestBaseImage stops the test through Missing unless the test base
// image exists in the engine.
func NeedTestBaseImage(t testing.TB) string {
	t.Helper()
	NeedDocker(t)
	img := TestBaseImage()
	if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
		Missing(t, "image %s not found (run scripts/test-base-image)", img)
	}
	return img
}

// FreePort returns a TCP port on 127.0.0.1 that nobody listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
