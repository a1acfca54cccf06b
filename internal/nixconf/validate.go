package nixconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultValidateTimeout bounds one run of nix when the context has no
// deadline of its own.
const DefaultValidateTimeout = 30 * time.Second

// Effective is what the real nix made of a candidate configuration.
type Effective struct {
	// Settings maps every setting name to its effective value, as
	// "nix config show" prints it.
	Settings map[string]string
	// Warnings are the "warning:" lines nix printed, such as
	// "warning: unknown setting 'extra-builders'". NixOS treats them as
	// errors; the caller decides.
	Warnings []string
	// Command is the nix command line that produced this.
	Command []string
}

// NixError is a candidate configuration that nix refused, with nix's own
// message.
type NixError struct {
	Command []string
	Stderr  string
	Err     error
}

func (e *NixError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", strings.Join(e.Command, " "), msg)
}

func (e *NixError) Unwrap() error { return e.Err }

// nixEnv is a controlled environment: nix reads the candidate in confDir
// and nothing else (no user nix.conf, no NIX_CONFIG, no XDG directories of
// the real user).
func nixEnv(home, confDir string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "xdg"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"NIX_CONF_DIR=" + confDir,
		// Set but empty: no user configuration files at all.
		"NIX_USER_CONF_FILES=",
		"LC_ALL=C",
	}
}

// runNix runs nixBin with args (never through a shell), bounded in time.
func runNix(ctx context.Context, nixBin string, env []string, dir string, args []string) (stdout, stderr string, cmdline []string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultValidateTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, nixBin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	cmdline = append([]string{nixBin}, args...)
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (nix did not finish in time)", ctx.Err())
	}
	return out.String(), errb.String(), cmdline, err
}

// writeCandidate writes files into a fresh directory under tmp.
func writeCandidate(dir string, files map[string][]byte) error {
	for name, data := range files {
		if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("candidate file name %q: must be a plain file name (the files sit side by side in one directory)", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func warningLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "warning:") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// Validate asks the real nix (nixBin) what it makes of a candidate
// configuration directory: files maps file names ("nix.conf", and the
// sibling files it includes, such as "nix.custom.conf" or "machines") to
// their content. They are written to a fresh temporary directory, and nix
// runs with NIX_CONF_DIR pointing there, HOME inside it and no user
// configuration, as "nix config show", or "nix show-config" on Nix too old
// for that. A configuration nix refuses is a *NixError carrying nix's
// message (such as "error: syntax error in configuration line …").
// Relative includes resolve among files; an absolute include still names
// the real file, as it will once the candidate is installed.
func Validate(ctx context.Context, nixBin string, files map[string][]byte) (*Effective, error) {
	if _, ok := files["nix.conf"]; !ok {
		return nil, errors.New("validate nix configuration: no nix.conf among the candidate files")
	}
	tmp, err := os.MkdirTemp("", "nixbuilder-nixconf-")
	if err != nil {
		return nil, fmt.Errorf("validate nix configuration: %w", err)
	}
	defer os.RemoveAll(tmp)
	confDir := filepath.Join(tmp, "etc-nix")
	home := filepath.Join(tmp, "home")
	for _, d := range []string{confDir, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("validate nix configuration: %w", err)
		}
	}
	if err := writeCandidate(confDir, files); err != nil {
		return nil, fmt.Errorf("validate nix configuration: %w", err)
	}
	env := nixEnv(home, confDir)
	common := []string{"--extra-experimental-features", "nix-command", "--no-net"}
	args := append(append([]string{}, common...), "config", "show")
	stdout, stderr, cmdline, err := runNix(ctx, nixBin, env, home, args)
	if err != nil && strings.Contains(stderr, "'config' is not a recognised command") {
		// Nix before 2.19 has only "nix show-config".
		args = append(append([]string{}, common...), "show-config")
		stdout, stderr, cmdline, err = runNix(ctx, nixBin, env, home, args)
	}
	stderr = strings.ReplaceAll(stderr, confDir, "<candidate>")
	if err != nil {
		return nil, &NixError{Command: cmdline, Stderr: stderr, Err: err}
	}
	eff := &Effective{Settings: map[string]string{}, Warnings: warningLines(stderr), Command: cmdline}
	for _, l := range strings.Split(stdout, "\n") {
		name, value, ok := strings.Cut(l, " = ")
		if !ok {
			if n, found := strings.CutSuffix(l, " ="); found {
				name, ok = n, true
			}
		}
		if ok && name != "" && !strings.ContainsAny(name, " \t") {
			eff.Settings[name] = value
		}
	}
	if len(eff.Settings) == 0 {
		return nil, &NixError{Command: cmdline, Stderr: stderr, Err: errors.New("nix printed no settings")}
	}
	return eff, nil
}

// ValidateMachines asks the real nix to read a machines file: it writes it
// to a temporary directory and starts a build, in a throw-away store there,
// of a derivation for a system no builder has, with --max-jobs 0, so that
// nix's build hook parses the file, lists the machines it read, and gives
// up without connecting anywhere. It returns nix's listing of the machines
// ("(systems, maxjobs, supportedFeatures, mandatoryFeatures)" rows); a file
// nix refuses is a *NixError with nix's message ("bad machine
// specification: …").
func ValidateMachines(ctx context.Context, nixBin string, machines []byte) (string, error) {
	tmp, err := os.MkdirTemp("", "nixbuilder-machines-")
	if err != nil {
		return "", fmt.Errorf("validate machines file: %w", err)
	}
	defer os.RemoveAll(tmp)
	confDir := filepath.Join(tmp, "etc-nix")
	home := filepath.Join(tmp, "home")
	for _, d := range []string{confDir, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("validate machines file: %w", err)
		}
	}
	machinesPath := filepath.Join(confDir, "machines")
	if err := writeCandidate(confDir, map[string][]byte{"nix.conf": nil, "machines": machines}); err != nil {
		return "", fmt.Errorf("validate machines file: %w", err)
	}
	const noSuchSystem = "nixbuilder-validate-machines"
	args := []string{
		"--extra-experimental-features", "nix-command",
		"build", "--no-link", "--impure",
		"--store", filepath.Join(tmp, "store"),
		"--option", "substituters", "",
		"--option", "build-users-group", "",
		"--max-jobs", "0",
		"--builders", "@" + machinesPath,
		"--expr", `derivation { name = "nixbuilder-validate-machines"; system = "` + noSuchSystem + `"; builder = "/bin/sh"; }`,
	}
	_, stderr, cmdline, err := runNix(ctx, nixBin, nixEnv(home, confDir), home, args)
	stderr = strings.ReplaceAll(stderr, confDir, "<candidate>")
	if err == nil {
		return "", &NixError{Command: cmdline, Stderr: stderr, Err: errors.New("the probe build unexpectedly succeeded")}
	}
	if ctx.Err() == nil && strings.Contains(stderr, "enable remote builds") && !strings.Contains(stderr, "bad machine specification") {
		// A file without any machine: nix read it and found nothing to
		// use, which is what an empty file means.
		return "0 available machines:", nil
	}
	if ctx.Err() != nil || !strings.Contains(stderr, noSuchSystem) || strings.Contains(stderr, "bad machine specification") {
		return "", &NixError{Command: cmdline, Stderr: stderr, Err: err}
	}
	// Keep nix's own account of what it read: the rows after
	// "available machines:".
	var rows []string
	in := false
	for _, l := range strings.Split(stderr, "\n") {
		switch {
		case strings.Contains(l, "available machines:"):
			in = true
			rows = append(rows, strings.TrimSpace(l))
		case in && strings.HasPrefix(l, "("):
			rows = append(rows, l)
		case in:
			in = false
		}
	}
	return strings.Join(rows, "\n"), nil
}
