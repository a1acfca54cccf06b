//go:build linux

// Package e2e runs the real nixbuilder-setup binary as root against the
// real Docker Engine, OpenSSH and Nix, inside a private mount namespace with
// tmpfs over /etc/nix, /etc/ssh/ssh_config.d, /root/.ssh and /nix, so that
// it writes the real paths without touching the machine.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker/dockertest"
	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
	"github.com/nixbuilder/nixbuilder-setup/internal/steps"
	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

const innerEnv = "NIXBUILDER_E2E_INNER"

// managedDirs are the directories the namespace covers with tmpfs.
var managedDirs = []string{"/etc/nix", "/etc/ssh/ssh_config.d", "/root/.ssh", "/nix"}

// A realistic nix.conf a user arrives with: comments, a tab, a trusted
// user, no final newline.
const userNixConf = "# nix.conf of a hand-managed machine\n" +
	"trusted-users = root alice\n" +
	"keep-outputs = true\t# for direnv\n" +
	"sandbox = false\n" +
	"max-jobs = auto"

const userKnownHosts = "# root's known hosts\n" +
	"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

// TestEndToEnd re-runs itself inside `unshare --mount` (the outer half),
// where it does the work (the inner half).
func TestEndToEnd(t *testing.T) {
	if os.Getenv(innerEnv) != "" {
		inner(t)
		return
	}
	testenv.NeedRoot(t)
	testenv.NeedTestBaseImage(t)
	for _, p := range []string{"unshare", "nix", "nix-build", "ssh", "docker"} {
		testenv.LookPath(t, p)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "nixbuilder-setup")
	build := exec.Command("go", "build", "-o", bin, "github.com/nixbuilder/nixbuilder-setup/cmd/nixbuilder-setup")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctxDir := filepath.Join(work, "builder-context")
	if err := dockertest.WriteTestBuilderContext(ctxDir); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("nbe2e%d", os.Getpid()%100000)
	t.Cleanup(func() { cleanupDocker(name) })
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		os.Args[0], "-test.run", "^TestEndToEnd$", "-test.v", "-test.timeout", "25m")
	cmd.Env = append(os.Environ(), innerEnv+"=1", "E2E_BIN="+bin, "E2E_CTX="+ctxDir, "E2E_NAME="+name)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("end-to-end run in a private mount namespace failed: %v", err)
	}
}

func cleanupDocker(name string) {
	exec.Command("docker", "rm", "-f", name).Run()
	exec.Command("docker", "volume", "rm", "-f", name+"-state", name+"-nix").Run()
	out, _ := exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", name).Output()
	for _, ref := range strings.Fields(string(out)) {
		exec.Command("docker", "rmi", "-f", ref).Run()
	}
}

// run is one invocation of the tool.
type run struct {
	exit           int
	stdout, stderr string
}

type harness struct {
	t    *testing.T
	bin  string
	ctx  string
	name string
	port int
}

func (h *harness) args(extra ...string) []string {
	return append(extra, "--name", h.name, "--port", fmt.Sprint(h.port), "--builder-context", h.ctx, "--sanity", "probe")
}

func (h *harness) run(args ...string) run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, h.args(args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := run{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// must runs the tool and fails the test unless it exits with want.
func (h *harness) must(want int, args ...string) run {
	h.t.Helper()
	r := h.run(args...)
	if r.exit != want {
		h.t.Fatalf("nixbuilder-setup %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.exit, want, r.stdout, r.stderr)
	}
	return r
}

// doctor runs doctor --json and returns each step's final event.
func (h *harness) doctor(want int) map[string]plan.Event {
	h.t.Helper()
	r := h.must(want, "doctor", "--json")
	return finalSteps(h.t, r.stdout)
}

func finalSteps(t *testing.T, stdout string) map[string]plan.Event {
	t.Helper()
	out := map[string]plan.Event{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev plan.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not JSON: %q: %v", sc.Text(), err)
		}
		if ev.Type == plan.EventStep && ev.Status != plan.StatusChecking && ev.Status != plan.StatusApplying {
			out[ev.ID] = ev
		}
	}
	return out
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// snapshot records every file under the managed directories (but the Nix
// store) with its bytes, mode, inode and mtime.
type fileState struct {
	data  string
	mode  fs.FileMode
	ino   uint64
	mtime time.Time
}

func snapshot(t *testing.T) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	for _, d := range managedDirs {
		if d == "/nix" {
			continue
		}
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			b, _ := os.ReadFile(p)
			m[p] = fileState{string(b), fi.Mode(), fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()}
			return nil
		})
	}
	return m
}

func inner(t *testing.T) {
	for _, d := range managedDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", d, err)
		}
	}
	os.Chmod("/root/.ssh", 0o700)
	if err := os.WriteFile("/etc/nix/nix.conf", []byte(userNixConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/root/.ssh/known_hosts", []byte(userKnownHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bin: os.Getenv("E2E_BIN"), ctx: os.Getenv("E2E_CTX"), name: os.Getenv("E2E_NAME"), port: testenv.FreePort(t)}
	before := snapshot(t)

	// First setup: from a realistic nix.conf to a proven remote build.
	r := h.must(0, "setup", "--yes", "--plain")
	if !regexp.MustCompile(`(?m)^ok +Remote build +x86_64-linux probe built on ` + h.name).MatchString(r.stdout) {
		t.Fatalf("setup did not prove a remote build:\n%s", r.stdout)
	}

	t.Run("remote build outside the tool", func(t *testing.T) { buildOutside(t, h) })
	t.Run("second setup changes nothing", func(t *testing.T) { secondSetup(t, h) })
	t.Run("later runs remember the settings", func(t *testing.T) {
		// Only the name: port and builder context come from the last setup.
		cmd := exec.Command(h.bin, "doctor", "--plain", "--sanity", "none", "--name", h.name)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("doctor with only --name: %v\n%s\n%s", err, o.String(), e.String())
		}
		if !strings.Contains(e.String(), "--port, --builder-context") || !strings.Contains(o.String(), fmt.Sprintf("127.0.0.1:%d", h.port)) {
			t.Errorf("the remembered settings were not used:\nstderr: %s\nstdout: %s", e.String(), o.String())
		}
	})
	t.Run("repair matrix", func(t *testing.T) { repairMatrix(t, h) })
	t.Run("faults", func(t *testing.T) { faults(t, h) })
	t.Run("uninstall restores everything", func(t *testing.T) {
		h.must(0, "uninstall", "--yes", "--plain")
		after := snapshot(t)
		for p, st := range before {
			if after[p].data != st.data {
				t.Errorf("%s differs after uninstall:\n%q\nwant\n%q", p, after[p].data, st.data)
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok {
				t.Errorf("%s left behind by uninstall", p)
			}
		}
		if out := sh(t, "docker", "ps", "-a", "--filter", "name=^"+h.name+"$", "--format", "{{.Names}}"); out != "" {
			t.Errorf("container left: %s", out)
		}
		if out := sh(t, "docker", "volume", "ls", "--filter", "name="+h.name, "--format", "{{.Name}}"); out != "" {
			t.Errorf("volumes left: %s", out)
		}
		if out := sh(t, "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", h.name); out != "" {
			t.Errorf("images left: %s", out)
		}
	})
}

// buildOutside builds a fresh derivation with plain nix-build --max-jobs 0:
// it can only succeed on the builder, and its output says where it ran.
func buildOutside(t *testing.T, h *harness) {
	marker := sh(t, "docker", "exec", h.name, "cat", "/var/lib/nixbuilder/marker")
	expr := steps.ProbeExpr("x86_64-linux", fmt.Sprintf("outside-%d", time.Now().UnixNano()))
	cmd := exec.Command("nix-build", "--no-out-link", "--max-jobs", "0", "--option", "substitute", "false", "-E", expr)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("nix-build: %v\n%s", err, e.String())
	}
	if !strings.Contains(e.String(), "on 'ssh-ng://root@"+h.name+"'") {
		t.Errorf("Nix did not log building on the builder:\n%s", e.String())
	}
	data, err := os.ReadFile(strings.TrimSpace(o.String()))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) != 3 || f[0] != "Linux" || f[1] != "localhost" || f[2] != marker {
		t.Errorf("probe output %q, want \"Linux localhost %s\" (kernel, sandbox hostname, builder marker)", data, marker)
	}
}

func secondSetup(t *testing.T, h *harness) {
	before := snapshot(t)
	started := sh(t, "docker", "inspect", "-f", "{{.State.StartedAt}}", h.name)
	images := sh(t, "docker", "images", "-q", "--no-trunc")
	r := h.must(0, "setup", "--yes", "--plain")
	if !strings.Contains(r.stdout, "everything is in place") || strings.Contains(r.stdout, "applied") {
		t.Errorf("second setup did something:\n%s", r.stdout)
	}
	after := snapshot(t)
	for p, st := range before {
		if a := after[p]; a.ino != st.ino || !a.mtime.Equal(st.mtime) || a.data != st.data {
			t.Errorf("%s was written by the second setup", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("the second setup created files: %d before, %d after", len(before), len(after))
	}
	if s := sh(t, "docker", "inspect", "-f", "{{.State.StartedAt}}", h.name); s != started {
		t.Errorf("the container was restarted: %s → %s", started, s)
	}
	if im := sh(t, "docker", "images", "-q", "--no-trunc"); im != images {
		t.Errorf("images changed: an image was built")
	}
}

func editFile(t *testing.T, path string, f func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(f(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

func repairMatrix(t *testing.T, h *harness) {
	key := "/etc/nix/" + h.name + "_ed25519"
	cases := []struct {
		name   string
		break_ func(t *testing.T)
		step   string   // the step doctor must name
		want   []string // text doctor's detail or hint must hold
		fixed  func(t *testing.T)
	}{
		{name: "container stopped", step: "container",
			break_: func(t *testing.T) { sh(t, "docker", "stop", h.name) }, want: []string{"not running"}},
		{name: "container removed", step: "container",
			break_: func(t *testing.T) { sh(t, "docker", "rm", "-f", h.name) }},
		{name: "state volume removed", step: "container",
			break_: func(t *testing.T) {
				sh(t, "docker", "rm", "-f", h.name)
				sh(t, "docker", "volume", "rm", h.name+"-state")
			}},
		{name: "authorized key removed in the builder", step: "authorized-key",
			break_: func(t *testing.T) {
				sh(t, "docker", "exec", h.name, "cp", "/dev/null", "/var/lib/nixbuilder/authorized_keys")
			}},
		{name: "key file deleted", step: "key",
			break_: func(t *testing.T) { os.Remove(key) }, want: []string{"no key"}},
		{name: "key mode 0644", step: "key",
			break_: func(t *testing.T) { os.Chmod(key, 0o644) }, want: []string{"0644"}},
		{name: "machines line deleted", step: "machines",
			break_: func(t *testing.T) {
				editFile(t, "/etc/nix/machines", func(s string) string {
					return regexp.MustCompile(`(?m)^ssh-ng://root@`+h.name+` .*\n`).ReplaceAllString(s, "")
				})
			}},
		{name: "machines line with the broken URI", step: "machines",
			break_: func(t *testing.T) {
				editFile(t, "/etc/nix/machines", func(s string) string {
					return strings.Replace(s, "ssh-ng://root@"+h.name+" ", fmt.Sprintf("ssh-ng://root@localhost:%d ", h.port), 1)
				})
			}, want: []string{"localhost:"}},
		{name: "builders-use-substitutes removed", step: "nix-conf",
			break_: func(t *testing.T) {
				editFile(t, "/etc/nix/nix.conf", func(s string) string {
					return strings.Replace(s, "builders-use-substitutes = true\n", "", 1)
				})
			}},
		{name: "root known_hosts entry removed", step: "known-hosts",
			break_: func(t *testing.T) {
				editFile(t, "/root/.ssh/known_hosts", func(s string) string {
					return regexp.MustCompile(`(?m)^`+h.name+` .*\n`).ReplaceAllString(s, "")
				})
			}, want: []string{"does not trust"}},
		{name: "wrong host key in known_hosts", step: "known-hosts",
			break_: func(t *testing.T) {
				editFile(t, "/root/.ssh/known_hosts", func(s string) string {
					return regexp.MustCompile(`(?m)^(`+h.name+` ssh-ed25519 )\S+`).ReplaceAllString(s, "${1}AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
				})
			}, want: []string{"but the builder's key is"}},
		{name: "alias file deleted", step: "ssh-config",
			break_: func(t *testing.T) { os.Remove("/etc/ssh/ssh_config.d/100-" + h.name + ".conf") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.break_(t)
			got := h.doctor(1)
			ev, ok := got[c.step]
			if !ok || ev.Status == "ok" || ev.Status == "skipped" {
				t.Fatalf("doctor does not name %s: %+v", c.step, got[c.step])
			}
			if ev.Hint == "" {
				t.Errorf("%s: no fix in the hint: %+v", c.step, ev)
			}
			for _, w := range c.want {
				if !strings.Contains(ev.Detail+" "+ev.Hint, w) {
					t.Errorf("%s: %q lacks %q", c.step, ev.Detail, w)
				}
			}
			h.must(0, "repair", "--yes", "--plain")
			h.doctor(0)
		})
	}

	t.Run("state volume removed shows old and new host keys", func(t *testing.T) {
		oldFP := sh(t, "ssh-keygen", "-l", "-F", h.name, "-f", "/root/.ssh/known_hosts")
		sh(t, "docker", "rm", "-f", h.name)
		sh(t, "docker", "volume", "rm", h.name+"-state")
		r := h.must(0, "repair", "--yes", "--plain")
		m := regexp.MustCompile(`trusts (SHA256:\S+) for ` + h.name + `, but the builder's key is (SHA256:\S+)`).FindStringSubmatch(r.stdout)
		if m == nil || m[1] == m[2] || !strings.Contains(oldFP, m[1]) {
			t.Errorf("repair did not show the old (%s) and new host key fingerprints:\n%s", oldFP, r.stdout)
		}
		h.doctor(0)
	})

	t.Run("nix.conf syntax error is reported, not guessed", func(t *testing.T) {
		orig, _ := os.ReadFile("/etc/nix/nix.conf")
		editFile(t, "/etc/nix/nix.conf", func(s string) string { return s + "this line is not valid\n" })
		got := h.doctor(1)
		ev := got["nix-conf"]
		if ev.Status != "failed" || !strings.Contains(ev.Detail, "this line is not valid") {
			t.Errorf("nix-conf = %+v, want failed naming the line", ev)
		}
		r := h.run("repair", "--yes", "--plain")
		if r.exit == 0 || !strings.Contains(r.stdout, "this line is not valid") {
			t.Errorf("repair exit %d, want a failure showing the line:\n%s", r.exit, r.stdout)
		}
		if now, _ := os.ReadFile("/etc/nix/nix.conf"); !strings.Contains(string(now), "this line is not valid") {
			t.Error("repair changed the user's broken line")
		}
		os.WriteFile("/etc/nix/nix.conf", orig, 0o644)
		h.doctor(0)
	})

	t.Run("root's ssh config overrides the alias", func(t *testing.T) {
		cfg := "/root/.ssh/config"
		orig := "Host *\n  Port 2200\n  User fallback\n"
		if err := os.WriteFile(cfg, []byte(orig), 0o600); err != nil {
			t.Fatal(err)
		}
		ev := h.doctor(1)["ssh-config"]
		if ev.Status != "needs-apply" || !strings.Contains(ev.Detail, cfg) || !strings.Contains(ev.Detail, "port") {
			t.Errorf("ssh-config = %+v, want needs-apply naming the port override in %s", ev, cfg)
		}
		if !strings.Contains(ev.Warning, "fallback") {
			t.Errorf("the User override is not mentioned: %+v", ev)
		}
		h.must(0, "repair", "--yes", "--plain")
		got, _ := os.ReadFile(cfg)
		if !strings.HasPrefix(string(got), "# BEGIN nixbuilder-setup "+h.name+"\n") || !strings.HasSuffix(string(got), orig) {
			t.Errorf("%s after repair:\n%s", cfg, got)
		}
		if b, _ := os.ReadFile(cfg + ".before-nixbuilder"); string(b) != orig {
			t.Errorf("backup %q, want the original", b)
		}
		if out := sh(t, "ssh", "-G", h.name); !strings.Contains(out, fmt.Sprintf("port %d", h.port)) || !strings.Contains(out, "user root") {
			t.Errorf("ssh -G %s after repair:\n%s", h.name, out)
		}
		h.doctor(0)
		h.must(0, "uninstall", "--yes", "--plain", "--only", "remove-ssh-blocks")
		if b, _ := os.ReadFile(cfg); string(b) != orig {
			t.Errorf("%s after uninstall = %q, want the original", cfg, b)
		}
		if _, err := os.Stat(cfg + ".before-nixbuilder"); err == nil {
			t.Error("backup left after uninstall")
		}
		os.Remove(cfg)
		h.doctor(0)
	})

	t.Run("only the builder steps", func(t *testing.T) {
		sh(t, "docker", "rm", "-f", h.name)
		only := []string{"setup", "--yes", "--plain", "--only", "image,container,authorized-key,host-key"}
		r := h.must(0, only...)
		if !strings.Contains(r.stdout, "applied  Builder container") {
			t.Errorf("the container was not re-created:\n%s", r.stdout)
		}
		r = h.must(0, only...)
		if strings.Contains(r.stdout, "applied") || !strings.Contains(r.stdout, "everything is in place") {
			t.Errorf("a second run changed something:\n%s", r.stdout)
		}
		h.doctor(0)
	})

	t.Run("port taken by another process", func(t *testing.T) {
		sh(t, "docker", "rm", "-f", h.name)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.port))
		if err != nil {
			t.Fatal(err)
		}
		got := h.doctor(1)
		ev := got["container"]
		if !strings.Contains(ev.Detail, "taken") || !strings.Contains(ev.Hint, "--port") {
			t.Errorf("container = %+v, want the port holder and a --port hint", ev)
		}
		r := h.run("repair", "--yes", "--plain")
		if r.exit != plan.ExitBlocked {
			t.Errorf("repair with the port taken: exit %d, want 3\n%s", r.exit, r.stdout)
		}
		l.Close()
		h.must(0, "repair", "--yes", "--plain")
		h.doctor(0)
	})
}

func faults(t *testing.T, h *harness) {
	t.Run("killed at each step boundary", func(t *testing.T) {
		for k := 1; ; k++ {
			h.must(0, "uninstall", "--yes", "--plain", "--keep-store")
			killed := h.killAfterApplied(t, k)
			if !killed {
				break // the run finished before the k-th change: all boundaries done
			}
			for p := range snapshot(t) {
				if strings.Contains(filepath.Base(p), ".nixbuilder-") {
					t.Errorf("temp file left after kill -9: %s", p)
				}
			}
			h.must(0, "setup", "--yes", "--plain")
			h.doctor(0)
		}
	})

	t.Run("two runs at once", func(t *testing.T) {
		h.must(0, "uninstall", "--yes", "--plain", "--keep-store")
		first := exec.Command(h.bin, h.args("setup", "--yes", "--json")...)
		stdout, _ := first.StdoutPipe()
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the first run is applying something, then start another.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"status":"applying"`) {
				break
			}
		}
		r := h.run("setup", "--yes", "--plain")
		go func() {
			for sc.Scan() {
			}
		}()
		if err := first.Wait(); err != nil {
			t.Fatalf("first run: %v", err)
		}
		if r.exit != 1 || !strings.Contains(r.stderr, "another nixbuilder-setup run") {
			t.Errorf("second run: exit %d, stderr %q; want 1 and a clear message", r.exit, r.stderr)
		}
		h.doctor(0)
	})

	t.Run("docker down", func(t *testing.T) {
		cmd := exec.Command(h.bin, h.args("doctor", "--json")...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///run/nixbuilder-no-such-docker.sock")
		out, _ := cmd.Output()
		if cmd.ProcessState.ExitCode() == 0 {
			t.Fatal("doctor passed with Docker down")
		}
		ev := finalSteps(t, string(out))["docker"]
		if ev.Status != "blocked" || !strings.Contains(ev.Hint, "start") {
			t.Errorf("docker = %+v, want blocked with a hint to start Docker", ev)
		}
	})
}

// killAfterApplied starts setup and kill -9s it right after its k-th
// applied step. It reports whether it killed it.
func (h *harness) killAfterApplied(t *testing.T, k int) bool {
	cmd := exec.Command(h.bin, h.args("setup", "--yes", "--json")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"status":"applied"`) {
			n++
			if n == k {
				cmd.Process.Kill()
				cmd.Wait()
				t.Logf("killed after applied step %d", k)
				return true
			}
		}
	}
	cmd.Wait()
	return false
}
