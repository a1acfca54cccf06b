package macos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Docker Desktop keeps its settings in its group container. From 4.35 the
// file is settings-store.json with PascalCase keys; before, settings.json
// with lowerCamel keys. We only read them: Docker's files are never edited.
const (
	DesktopSettingsDir        = "Library/Group Containers/group.com.docker"
	DesktopSettingsStoreFile  = "settings-store.json"
	DesktopLegacySettingsFile = "settings.json"
)

// DesktopSettingsPaths returns the files to try under home, newest format
// first.
func DesktopSettingsPaths(home string) []string {
	dir := filepath.Join(home, filepath.FromSlash(DesktopSettingsDir))
	return []string{
		filepath.Join(dir, DesktopSettingsStoreFile),
		filepath.Join(dir, DesktopLegacySettingsFile),
	}
}

// Flag is a boolean setting that may be absent: Docker Desktop writes only
// what differs from its defaults, and the defaults changed across releases,
// so a missing key means "unknown", never "off".
type Flag int

// The states of a Flag.
const (
	Unknown Flag = iota // the key is absent or not a boolean
	Off
	On
)

// String prints on, off or unknown.
func (f Flag) String() string {
	switch f {
	case On:
		return "on"
	case Off:
		return "off"
	default:
		return "unknown"
	}
}

// DesktopSettings are the settings that decide whether Docker Desktop runs
// x86_64 containers through Rosetta.
type DesktopSettings struct {
	// Path is the file read; "" when none exists.
	Path string
	// Rosetta is "Use Rosetta for x86_64/amd64 emulation on Apple Silicon"
	// (UseVirtualizationFrameworkRosetta).
	Rosetta Flag
	// VirtualizationFramework is the Apple Virtualization framework VMM
	// (UseVirtualizationFramework), which Rosetta needs.
	VirtualizationFramework Flag
	// DockerVMM is the Docker VMM (libkrun) VMM (UseLibkrun).
	DockerVMM Flag
}

// ParseDesktopSettings reads a settings file's JSON. path names the file in
// errors. Keys are looked up in both spellings, the file's own first, since
// migrations between the formats have left either in either file.
func ParseDesktopSettings(path string, data []byte) (DesktopSettings, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return DesktopSettings{}, fmt.Errorf("parse Docker Desktop settings %s: %w (open Docker Desktop's Settings and press Apply to rewrite it)", path, err)
	}
	if raw == nil {
		return DesktopSettings{}, fmt.Errorf("parse Docker Desktop settings %s: not a JSON object", path)
	}
	return DesktopSettings{
		Path:                    path,
		Rosetta:                 flag(raw, "UseVirtualizationFrameworkRosetta"),
		VirtualizationFramework: flag(raw, "UseVirtualizationFramework"),
		DockerVMM:               flag(raw, "UseLibkrun"),
	}, nil
}

// flag looks key up as PascalCase and lowerCamel. A value is a bool, or in
// the admin-settings shape {"value": bool, "locked": …}; anything else is
// Unknown.
func flag(raw map[string]json.RawMessage, key string) Flag {
	lower := string(key[0]+'a'-'A') + key[1:]
	for _, k := range []string{key, lower} {
		v, ok := raw[k]
		if !ok {
			continue
		}
		var b bool
		if json.Unmarshal(v, &b) == nil {
			return boolFlag(b)
		}
		var wrapped struct {
			Value *bool `json:"value"`
		}
		if json.Unmarshal(v, &wrapped) == nil && wrapped.Value != nil {
			return boolFlag(*wrapped.Value)
		}
	}
	return Unknown
}

func boolFlag(b bool) Flag {
	if b {
		return On
	}
	return Off
}

// ReadDesktopSettings reads the first settings file that exists under home
// (settings-store.json, then settings.json). readFile is os.ReadFile when
// nil. No file at all is not an error: the result has Path "" and every
// flag Unknown.
func ReadDesktopSettings(home string, readFile func(string) ([]byte, error)) (DesktopSettings, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	for _, p := range DesktopSettingsPaths(home) {
		data, err := readFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return DesktopSettings{}, fmt.Errorf("read Docker Desktop settings %s: %w", p, err)
		}
		return ParseDesktopSettings(p, data)
	}
	return DesktopSettings{}, nil
}

// Verdict is the outcome of EvaluateDesktopRosetta.
type Verdict int

const (
	// VerdictOK: Docker Desktop runs x86_64 containers through Rosetta.
	VerdictOK Verdict = iota
	// VerdictBlocked: the user must change a Docker Desktop setting.
	VerdictBlocked
	// VerdictUnknown: the settings do not say; a build through the builder
	// is the only proof.
	VerdictUnknown
)

// Where the settings live in Docker Desktop's UI (4.35 and later; before
// 4.25 the Rosetta checkbox was under "Features in development").
const (
	// RosettaSettingPlace is the exact place of the Rosetta switch.
	RosettaSettingPlace = "Docker Desktop → Settings → General → Use Rosetta for x86_64/amd64 emulation on Apple Silicon"
	// VMMSettingPlace is where the Virtualization framework is chosen.
	VMMSettingPlace = "Docker Desktop → Settings → General → Virtual Machine Options → Apple Virtualization framework"
)

// DesktopRosetta is EvaluateDesktopRosetta's answer, ready for a step
// result.
type DesktopRosetta struct {
	Verdict Verdict
	Detail  string
	Hint    string
}

// EvaluateDesktopRosetta decides whether Docker Desktop's settings let the
// builder run x86_64-linux through Rosetta, and if not, what to switch on.
// Rosetta is a feature of the Apple Virtualization framework: with Docker
// VMM or QEMU selected, the Rosetta key is meaningless.
func EvaluateDesktopRosetta(s DesktopSettings) DesktopRosetta {
	file := s.Path
	if file == "" {
		file = "Docker Desktop's settings"
	}
	enable := "switch on " + RosettaSettingPlace + " (it needs " + VMMSettingPlace + "), then Apply & restart"
	switch {
	case s.DockerVMM == On || s.VirtualizationFramework == Off:
		vmm := "QEMU"
		if s.DockerVMM == On {
			vmm = "Docker VMM"
		}
		return DesktopRosetta{
			Verdict: VerdictBlocked,
			Detail:  fmt.Sprintf("Docker Desktop uses %s, not the Apple Virtualization framework, so Rosetta emulation is unavailable (%s)", vmm, file),
			Hint:    "choose " + VMMSettingPlace + ", then switch on " + RosettaSettingPlace + " and Apply & restart; or run with --emulation qemu",
		}
	case s.Rosetta == Off:
		return DesktopRosetta{
			Verdict: VerdictBlocked,
			Detail:  fmt.Sprintf("Docker Desktop's Rosetta emulation is off (%s)", file),
			Hint:    enable + "; or run with --emulation qemu",
		}
	case s.Rosetta == On:
		return DesktopRosetta{
			Verdict: VerdictOK,
			Detail:  fmt.Sprintf("Docker Desktop runs x86_64 containers through Rosetta (%s)", file),
		}
	default:
		return DesktopRosetta{
			Verdict: VerdictUnknown,
			Detail:  fmt.Sprintf("%s does not record the Rosetta setting (Docker Desktop's default applies)", file),
			Hint:    "if x86_64 builds are slow or fail, " + enable,
		}
	}
}
