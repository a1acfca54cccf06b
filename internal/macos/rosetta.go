package macos

import "strings"

// RosettaRuntime exists once Rosetta 2 is installed.
const RosettaRuntime = "/Library/Apple/usr/libexec/oah/libRosettaRuntime"

// RosettaInstallCommand is the argv that installs Rosetta 2 without the
// interactive license prompt. It runs through the privileged runner; on
// failure show softwareupdate's output.
func RosettaInstallCommand() []string {
	return []string{"softwareupdate", "--install-rosetta", "--agree-to-license"}
}

// RosettaProbeCommand is the argv that proves Rosetta can run x86_64 code:
// it fails with "Bad CPU type in executable" when Rosetta is missing.
func RosettaProbeCommand() []string {
	return []string{"arch", "-arch", "x86_64", "/usr/bin/true"}
}

// RosettaStatus is what the rosetta step sees.
type RosettaStatus struct {
	// RuntimePresent: RosettaRuntime exists.
	RuntimePresent bool
	// Runs: RosettaProbeCommand succeeded.
	Runs bool
	// ProbeOutput is what the probe command printed when it failed.
	ProbeOutput string
}

// Installed reports whether Rosetta works. Running x86_64 code is the
// proof; the runtime file alone (left behind by a broken install) is not.
func (s RosettaStatus) Installed() bool { return s.Runs }

// Detail describes the status in one line.
func (s RosettaStatus) Detail() string {
	switch {
	case s.Runs:
		return "Rosetta 2 runs x86_64 code"
	case s.RuntimePresent:
		return "Rosetta 2 runtime present but x86_64 code does not run: " + oneLine(s.ProbeOutput)
	default:
		return "Rosetta 2 is not installed (" + RosettaRuntime + " missing)"
	}
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "no output"
	}
	return s
}

// Emulation values of --emulation.
const (
	EmulationRosetta = "rosetta"
	EmulationQEMU    = "qemu"
)

// RosettaNeeded reports whether the host must have Rosetta and Docker
// Desktop's Rosetta emulation: only on Apple Silicon, and only when
// x86_64-linux builds go through Rosetta (the default, "" or "rosetta");
// with --emulation qemu the VM emulates by itself, and Intel Macs run
// x86_64 natively.
func RosettaNeeded(appleSilicon bool, emulation string) bool {
	return appleSilicon && (emulation == "" || emulation == EmulationRosetta)
}
