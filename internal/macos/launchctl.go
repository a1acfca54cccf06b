package macos

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// launchd labels of the Nix daemon.
const (
	// LabelNixDaemon is the label of the upstream installer's daemon and of
	// nix-darwin's.
	LabelNixDaemon = "org.nixos.nix-daemon"
	// LabelDeterminateDaemon is Determinate Nix's daemon.
	LabelDeterminateDaemon = "systems.determinate.nix-daemon"
)

// DaemonLabels lists the labels to look for, in the order to try them.
func DaemonLabels() []string {
	return []string{LabelNixDaemon, LabelDeterminateDaemon}
}

// KickstartCommand is the argv that restarts a system launchd service, the
// running instance killed first (-k) so the daemon rereads nix.conf. It runs
// through the privileged runner.
func KickstartCommand(label string) []string {
	return []string{"launchctl", "kickstart", "-k", "system/" + label}
}

// PrintCommand is the argv that shows a system launchd service; reading
// the system domain needs no privileges.
func PrintCommand(label string) []string {
	return []string{"launchctl", "print", "system/" + label}
}

// LaunchdService is what `launchctl print system/<label>` tells. launchd
// does not print when the process started: for that, take PID to
// Probe.ProcessStartTime.
type LaunchdService struct {
	// Label is the service name; Found is false when launchctl answered
	// "Could not find service".
	Label string
	Found bool
	// State is "running", "not running", "waiting", "spawn scheduled", …
	State string
	// PID is the running process, 0 when none.
	PID int
	// Path is the plist launchd loaded the service from.
	Path string
	// Program is the program launchd starts (often /bin/sh with
	// wait4path in the arguments).
	Program string
	// Runs counts the starts since the service was loaded.
	Runs int
	// LastExitCode is as printed: "(never exited)", "0", …
	LastExitCode string
}

// Running reports whether the service has a live process.
func (s LaunchdService) Running() bool { return s.Found && s.PID > 0 }

var (
	headerRE   = regexp.MustCompile(`^(?:system|gui/\d+|user/\d+)/(\S+) = \{$`)
	notFoundRE = regexp.MustCompile(`Could not find service "([^"]+)"`)
)

// ParseLaunchctlPrint parses `launchctl print system/<label>`. Pass the
// command's combined output when it failed: a missing service is reported
// on stderr ("Could not find service … in domain for system", exit 113) and
// yields Found=false without an error. Only the top-level keys are read;
// nested blocks (coalitions carry their own "state") are skipped.
func ParseLaunchctlPrint(out []byte) (LaunchdService, error) {
	text := string(out)
	if m := notFoundRE.FindStringSubmatch(text); m != nil {
		return LaunchdService{Label: m[1]}, nil
	}
	var s LaunchdService
	depth := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if depth == 0 {
			if m := headerRE.FindStringSubmatch(line); m != nil {
				s.Label, s.Found = m[1], true
				depth = 1
			}
			continue
		}
		if strings.HasSuffix(line, "{") {
			depth++
			continue
		}
		if line == "}" {
			depth--
			continue
		}
		if depth != 1 {
			continue
		}
		key, val, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		switch key {
		case "state":
			s.State = val
		case "pid":
			pid, err := strconv.Atoi(val)
			if err != nil {
				return LaunchdService{}, fmt.Errorf("parse launchctl print: pid %q", val)
			}
			s.PID = pid
		case "path":
			s.Path = val
		case "program":
			s.Program = val
		case "runs":
			s.Runs, _ = strconv.Atoi(val)
		case "last exit code":
			s.LastExitCode = val
		}
	}
	if !s.Found {
		return LaunchdService{}, fmt.Errorf("parse launchctl print output %q: no \"system/<label> = {\" header", firstLine(out))
	}
	return s, nil
}
