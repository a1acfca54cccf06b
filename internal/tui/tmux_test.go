package tui_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

// The real-terminal test: the built binary runs in a detached tmux pane of
// 80×24, is driven with send-keys and read with capture-pane, the way a
// person would use it. The model tests (tui_test.go) cover the screens in
// detail; this one proves that the CLI picks the TUI on a terminal, that
// keys reach it, that it draws within the terminal, and that exit codes and
// files on disk match what the screen said.
//
// Every run uses the hidden --root flag (all host paths under a temporary
// directory) and --only, so that no Docker and no privileges are needed.

const (
	termWidth  = 80
	termHeight = 24
	// waitLimit is how long a screen may take to appear. Runs take well
	// under a second; the margin is for a loaded CI machine.
	waitLimit = 60 * time.Second
	pollEvery = 100 * time.Millisecond
)

func TestTmux(t *testing.T) {
	tmuxPath := testenv.LookPath(t, "tmux")
	bin := buildBinary(t)

	t.Run("Onboarding", func(t *testing.T) {
		root := newRoot(t)
		tm := startTmux(t, tmuxPath, nil, bin, "setup", "--root", root, "--only", "key")
		key := filepath.Join(root, "etc/nix/nixbuilder_ed25519")

		s := tm.waitFor("the review screen", "Review: Builder key (key) · 2 changes",
			"[file] create "+key, "[file] create "+key+".pub",
			"Apply? y yes · a yes, and to all later steps · n no, change nothing")
		mustLine(t, s, "y apply this step • a apply all • n decline • ↑/↓ scroll • q stop safely")
		if _, err := os.Stat(key); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the key exists before consent (stat: %v)", err)
		}
		// Colour is on in a 256-colour terminal: the NO_COLOR check in
		// Cancel below could not fail otherwise.
		if e := tm.capture("-e"); !strings.Contains(e, "\x1b[") {
			t.Errorf("no colour on a tmux-256color terminal without NO_COLOR:\n%s", e)
		}

		tm.key("y")
		s = tm.waitFor("the finish screen", "✓ done: applied key", "✓ key",
			"Builder nixbuilder on 127.0.0.1:2222",
			"Use it nix build --max-jobs 0 --system x86_64-linux nixpkgs#hello",
			"Undo nixbuilder-setup uninstall")
		if code := tm.waitExit(); code != 0 {
			t.Fatalf("exit code %d, want 0; screen:\n%s", code, s)
		}
		checkMode(t, key, 0o600)
		checkMode(t, key+".pub", 0o644)
		if data, err := os.ReadFile(key); err != nil || !strings.HasPrefix(string(data), "-----BEGIN OPENSSH PRIVATE KEY-----") {
			t.Errorf("%s is not an OpenSSH private key (err %v)", key, err)
		}
	})

	t.Run("Decline", func(t *testing.T) {
		root := newRoot(t)
		tm := startTmux(t, tmuxPath, nil, bin, "setup", "--root", root, "--only", "key")
		tm.waitFor("the review screen", "Review: Builder key (key)", "n no, change nothing")
		tm.key("n")
		s := tm.waitFor("the summary of what is left", "! 1 problem: key",
			"! Builder key blocked: declined: no key at "+filepath.Join(root, "etc/nix/nixbuilder_ed25519"),
			"→ nothing was changed; run again and accept to apply")
		if code := tm.waitExit(); code != 3 {
			t.Fatalf("exit code %d, want 3; screen:\n%s", code, s)
		}
		checkUntouched(t, root)
	})

	t.Run("Blocked", func(t *testing.T) {
		testenv.LookPath(t, "nix") // the nix step checks the real Nix
		root := newRoot(t)
		conf := filepath.Join(root, "etc/nix/nix.conf")
		if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
			t.Fatal(err)
		}
		// nix-darwin's layout: nix.conf is its link into /etc/static.
		if err := os.Symlink("/etc/static/nix.conf", conf); err != nil {
			t.Fatal(err)
		}
		tm := startTmux(t, tmuxPath, nil, bin, "setup", "--root", root, "--only", "nix,nix-conf")
		s := tm.waitFor("the blocked summary", "! 1 problem: nix-conf", "✓ nix", "! nix-conf",
			"! nix.conf blocked: "+conf+" is managed by nix-darwin; nixbuilder-setup will not edit it",
			"→ "+conf+" is a link to /etc/static/nix.conf",
			"add the builder to your nix-darwin configuration and run darwin-rebuild switch")
		if code := tm.waitExit(); code != 3 {
			t.Fatalf("exit code %d, want 3 (blocked); screen:\n%s", code, s)
		}
		if target, err := os.Readlink(conf); err != nil || target != "/etc/static/nix.conf" {
			t.Errorf("nix.conf link changed: %q, %v", target, err)
		}
	})

	t.Run("DoctorRepair", func(t *testing.T) {
		root := newRoot(t)
		key := filepath.Join(root, "etc/nix/nixbuilder_ed25519")
		tm := startTmux(t, tmuxPath, nil, bin, "doctor", "--root", root, "--only", "key")
		s := tm.waitFor("the doctor summary", "nixbuilder-setup · doctor ·",
			"✗ 1 problem: key — run `nixbuilder-setup repair` to fix",
			"• Builder key needs change: no key at "+key,
			"Press r to repair the failing steps, q to quit.")
		mustLine(t, s, "r repair failing steps • q quit")
		if tm.exited() {
			t.Fatalf("doctor exited instead of offering repair; screen:\n%s", s)
		}
		checkUntouched(t, root)

		tm.key("r")
		tm.waitFor("the repair's review screen", "nixbuilder-setup · repair ·",
			"Review: Builder key (key) · 2 changes", "[file] create "+key)
		tm.key("y")
		s = tm.waitFor("the repair's finish screen", "nixbuilder-setup · repair ·", "✓ done: applied key",
			"Undo nixbuilder-setup uninstall")
		if code := tm.waitExit(); code != 0 {
			t.Fatalf("exit code %d, want 0; screen:\n%s", code, s)
		}
		checkMode(t, key, 0o600)
	})

	t.Run("Cancel", func(t *testing.T) {
		root := newRoot(t)
		tm := startTmux(t, tmuxPath, []string{"NO_COLOR=1"}, bin, "setup", "--root", root, "--only", "key")
		tm.waitFor("the review screen", "Review: Builder key (key)", "q stop safely")
		if e := tm.capture("-e"); strings.Contains(e, "\x1b") {
			t.Errorf("escape sequences on screen with NO_COLOR=1:\n%q", e)
		}
		tm.key("q")
		s := tm.waitFor("the interrupted summary", "interrupted; no file was left half-written — run again to continue",
			"• Builder key needs change: no key at")
		if code := tm.waitExit(); code != 130 {
			t.Fatalf("exit code %d, want 130; screen:\n%s", code, s)
		}
		if e := tm.capture("-e"); strings.Contains(e, "\x1b") {
			t.Errorf("escape sequences on the last screen with NO_COLOR=1:\n%q", e)
		}
		checkUntouched(t, root)
	})
}

// buildBinary builds the command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "nixbuilder-setup")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/nixbuilder/nixbuilder-setup/cmd/nixbuilder-setup")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// newRoot is an empty file system root for --root: not even /tmp, where
// the run lock goes, exists.
func newRoot(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

// checkUntouched asserts that a run wrote nothing under root but its lock.
func checkUntouched(t *testing.T, root string) {
	t.Helper()
	var extra []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel != "." && rel != "tmp" && rel != "tmp/nixbuilder-setup.lock" {
			extra = append(extra, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		t.Errorf("the run changed the root, though it should not have: %v", extra)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want a regular file with %v", path, fi.Mode(), want)
	}
}

// mustLine asserts that the screen has a line that, trimmed, is want.
func mustLine(t *testing.T, screen, want string) {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.TrimSpace(l) == want {
			return
		}
	}
	t.Errorf("no line %q on the screen:\n%s", want, screen)
}

// tmuxTerm is one program in its own tmux server (its own socket), so that
// the test never touches the user's tmux.
type tmuxTerm struct {
	t      *testing.T
	tmux   string
	socket string
	conf   string
	env    []string
}

// session is the tmux target of the program's pane.
const session = "nbs"

// startTmux runs argv in a detached 80×24 pane with TERM=tmux-256color.
// extraEnv (NAME=value) is added to the environment the program gets.
func startTmux(t *testing.T, tmuxPath string, extraEnv []string, argv ...string) *tmuxTerm {
	t.Helper()
	// A socket path must be short (about 100 bytes): not under t.TempDir,
	// whose name holds the test's name.
	dir, err := os.MkdirTemp("", "nbs-tmux")
	if err != nil {
		t.Fatal(err)
	}
	tm := &tmuxTerm{t: t, tmux: tmuxPath, socket: filepath.Join(dir, "s"), conf: filepath.Join(dir, "tmux.conf")}
	// remain-on-exit keeps the pane, its last screen and its exit status
	// after the program ends; no status line, so the pane is all 24 rows.
	conf := "set -g remain-on-exit on\nset -g status off\nset -g default-terminal tmux-256color\nset -g history-limit 1000\n"
	if err := os.WriteFile(tm.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The server, and so the program, gets this environment: nothing from
	// an enclosing tmux, no colour settings but those of the test, and no
	// CI (terminal libraries take CI to mean "not a terminal", which a
	// person at this pane would not have set).
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "TMUX", "TMUX_PANE", "TERM", "NO_COLOR", "COLORTERM", "CLICOLOR", "CLICOLOR_FORCE", "NIXBUILDER_ROOT", "CI":
			continue
		}
		tm.env = append(tm.env, kv)
	}
	tm.env = append(tm.env, extraEnv...)
	t.Cleanup(func() {
		// Kills only this test's server; errors when it is already gone.
		_, _ = tm.run("kill-server")
		_ = os.RemoveAll(dir)
	})
	args := append([]string{"new-session", "-d", "-s", session,
		"-x", strconv.Itoa(termWidth), "-y", strconv.Itoa(termHeight), "--"}, argv...)
	if out, err := tm.run(args...); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	size, err := tm.run("display-message", "-p", "-t", session, "#{pane_width}x#{pane_height}")
	if err != nil {
		t.Fatalf("tmux display-message: %v\n%s", err, size)
	}
	if got, want := strings.TrimSpace(size), fmt.Sprintf("%dx%d", termWidth, termHeight); got != want {
		t.Fatalf("pane is %s, want %s", got, want)
	}
	return tm
}

func (tm *tmuxTerm) run(args ...string) (string, error) {
	// -u: UTF-8 whatever the locale, so ✓ and → read back as themselves.
	cmd := exec.Command(tm.tmux, append([]string{"-u", "-S", tm.socket, "-f", tm.conf}, args...)...)
	cmd.Env = tm.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// capture returns the visible pane. -J joins the lines the terminal
// wrapped, so that a line drawn wider than the terminal shows as such.
func (tm *tmuxTerm) capture(flags ...string) string {
	tm.t.Helper()
	out, err := tm.run(append([]string{"capture-pane", "-p", "-J", "-t", session}, flags...)...)
	if err != nil {
		tm.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return out
}

// screen is the visible pane without tmux's own "Pane is dead" line.
func (tm *tmuxTerm) screen() string {
	tm.t.Helper()
	var lines []string
	for _, l := range strings.Split(tm.capture(), "\n") {
		if strings.HasPrefix(l, "Pane is dead") {
			continue
		}
		lines = append(lines, strings.TrimRight(l, " "))
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// key sends one key. Keys go one per call: Bubble Tea reads runes that
// arrive together as one key press.
func (tm *tmuxTerm) key(k string) {
	tm.t.Helper()
	if out, err := tm.run("send-keys", "-t", session, k); err != nil {
		tm.t.Fatalf("tmux send-keys %s: %v\n%s", k, err, out)
	}
}

// waitFor polls the screen until it holds every text in wants, compared
// with all white space removed: the TUI wraps long paths and hints at
// whatever column the path's length puts the break. The screen must fit
// the terminal at every stage.
func (tm *tmuxTerm) waitFor(what string, wants ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		flat := squash(s)
		missing := slices.IndexFunc(wants, func(w string) bool { return !strings.Contains(flat, squash(w)) })
		if missing < 0 {
			checkFits(tm.t, s)
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waiting for %s: %q not on the screen after %v:\n%s", what, wants[missing], waitLimit, s)
		}
		time.Sleep(pollEvery)
	}
}

// exited reports whether the program has ended.
func (tm *tmuxTerm) exited() bool {
	tm.t.Helper()
	dead, _, _ := tm.paneStatus()
	return dead
}

// paneStatus reports whether the program has ended and, once tmux has
// reaped it, its exit status (ok false until then).
//
// tmux can miss the program's SIGCHLD: when the pane's terminal closes
// before the signal arrives, tmux removes the utmp record through
// libutempter, whose own SIGCHLD handler swallows it
// (https://github.com/tmux/tmux/issues/311), and the program stays a zombie
// with no status. A SIGCHLD sent to this test's own server makes it reap.
func (tm *tmuxTerm) paneStatus() (dead bool, status int, ok bool) {
	tm.t.Helper()
	out, err := tm.run("display-message", "-p", "-t", session, "#{pid}|#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}")
	if err != nil {
		tm.t.Fatalf("tmux display-message: %v\n%s", err, out)
	}
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 4 {
		tm.t.Fatalf("tmux display-message: unexpected answer %q", out)
	}
	if f[1] != "1" {
		return false, 0, false
	}
	if f[3] != "" {
		tm.t.Fatalf("the program was killed by signal %s; screen:\n%s", f[3], tm.screen())
	}
	if f[2] == "" {
		if pid, err := strconv.Atoi(f[0]); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGCHLD)
		}
		return true, 0, false
	}
	code, err := strconv.Atoi(f[2])
	if err != nil {
		tm.t.Fatalf("tmux pane_dead_status %q: %v", f[2], err)
	}
	return true, code, true
}

// waitExit waits for the program to end and returns its exit code.
func (tm *tmuxTerm) waitExit() int {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		dead, code, ok := tm.paneStatus()
		if ok {
			return code
		}
		if time.Now().After(deadline) {
			if dead {
				tm.t.Fatalf("the program ended without an exit status (killed by a signal?); screen:\n%s", tm.screen())
			}
			tm.t.Fatalf("the program did not exit within %v; screen:\n%s", waitLimit, tm.screen())
		}
		time.Sleep(pollEvery)
	}
}

// checkFits asserts that no line is wider than the terminal (a wider one
// wraps, and capture -J joins it back) and that the screen has at most as
// many lines as the terminal.
func checkFits(t *testing.T, screen string) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) > termHeight {
		t.Errorf("screen has %d lines, more than %d:\n%s", len(lines), termHeight, screen)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > termWidth {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, w, termWidth, l)
		}
	}
}

// squash removes all white space.
func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}
