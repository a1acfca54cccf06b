package nixconf

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// FileFacts is what the caller learnt about one file with Lstat and
// ReadFile; detection itself does no I/O.
type FileFacts struct {
	// Exists is false when Lstat reported that the file does not exist.
	Exists bool
	// IsSymlink and LinkTarget come from Lstat and Readlink.
	IsSymlink  bool
	LinkTarget string
	// Data is the file's content (read through the link, if any).
	Data []byte
}

// Layout says who manages the Nix configuration.
type Layout int

const (
	// Upstream is the official installer (or a distribution package): our
	// settings go into nix.conf.
	Upstream Layout = iota
	// Determinate is Determinate Nix, which rewrites nix.conf on upgrade:
	// our settings go into nix.custom.conf, which its nix.conf includes.
	Determinate
	// NixDarwin is nix-darwin: nix.conf is a link into /etc/static and
	// darwin-rebuild replaces it; the user must add our builder to their
	// configuration (see NixDarwinSnippet).
	NixDarwin
)

func (l Layout) String() string {
	switch l {
	case Upstream:
		return "upstream"
	case Determinate:
		return "determinate"
	case NixDarwin:
		return "nix-darwin"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// DeterminateHeader is how Determinate Nix's generated nix.conf begins.
const DeterminateHeader = "# DETERMINATE NIX CONFIG"

// Ownership is where our nix.conf settings belong.
type Ownership struct {
	Layout Layout
	// File is the file to edit, in the configuration directory given to
	// DetectOwnership ("" when Blocked).
	File string
	// Blocked is set when no file may be edited: the user has to act, as
	// Reason says.
	Blocked bool
	Reason  string
	// CustomIncluded reports, for Determinate, whether nix.conf includes
	// nix.custom.conf (with include or !include).
	CustomIncluded bool
}

// DetectOwnership decides which file our settings go in, from the facts
// about confDir/nix.conf and confDir/nix.custom.conf. confDir is /etc/nix
// or $NIX_CONF_DIR.
func DetectOwnership(confDir string, nixConf, customConf FileFacts) (Ownership, error) {
	confPath := path.Join(confDir, "nix.conf")
	customPath := path.Join(confDir, "nix.custom.conf")
	if nixConf.IsSymlink {
		target := nixConf.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(confDir, target)
		}
		target = path.Clean(target)
		if strings.HasPrefix(target, "/etc/static/") || strings.HasPrefix(target, "/nix/store/") {
			return Ownership{
				Layout:  NixDarwin,
				Blocked: true,
				Reason: fmt.Sprintf("%s is a link to %s, managed by nix-darwin (darwin-rebuild would undo any edit): "+
					"add the builder to your nix-darwin configuration and run darwin-rebuild switch", confPath, nixConf.LinkTarget),
			}, nil
		}
	}
	var cfg *Config
	if nixConf.Exists {
		c, err := Parse(nixConf.Data)
		if err != nil {
			return Ownership{}, fmt.Errorf("%s: %w (Nix refuses this file too: fix the line)", confPath, err)
		}
		cfg = c
	}
	included := false
	if cfg != nil {
		for _, inc := range cfg.Includes() {
			p := inc.Path
			if !path.IsAbs(p) {
				p = path.Join(confDir, p)
			}
			if path.Clean(p) == customPath {
				included = true
			}
		}
	}
	determinate := strings.HasPrefix(string(nixConf.Data), DeterminateHeader) || included
	if !determinate {
		o := Ownership{Layout: Upstream, File: confPath}
		if nixConf.IsSymlink {
			o.File = ""
			o.Blocked = true
			o.Reason = fmt.Sprintf("%s is a link to %s: not editing through it; edit the file it points to, or replace the link with a file", confPath, nixConf.LinkTarget)
		}
		return o, nil
	}
	o := Ownership{Layout: Determinate, File: customPath, CustomIncluded: included}
	switch {
	case !included:
		o.File = ""
		o.Blocked = true
		o.Reason = fmt.Sprintf("%s is managed by Determinate Nix but does not include nix.custom.conf, so settings there would be ignored: "+
			"add the line \"!include nix.custom.conf\" to it, or reinstall Determinate Nix", confPath)
	case customConf.IsSymlink:
		o.File = ""
		o.Blocked = true
		o.Reason = fmt.Sprintf("%s is a link to %s: not editing through it", customPath, customConf.LinkTarget)
	case customConf.Exists:
		if _, err := Parse(customConf.Data); err != nil {
			return Ownership{}, fmt.Errorf("%s: %w (Nix refuses this file too: fix the line)", customPath, err)
		}
	}
	return o, nil
}

// MergeBuilders returns the builders value that keeps every builder the
// user already has (current is the effective value, as nix config show
// reports it) and also reads machinesPath. When current already reads
// machinesPath it is returned unchanged. When current is a single
// "@OTHER" file reference, value is current unchanged and elsewhere is
// OTHER: our machines line belongs in that file instead, since Nix 2.8
// reads a value that starts with "@" as one file name.
func MergeBuilders(current, machinesPath string) (value, elsewhere string) {
	entries := BuilderEntries(current)
	if len(entries) == 0 {
		return "@" + machinesPath, ""
	}
	for _, f := range BuilderFiles(current) {
		if path.Clean(f) == path.Clean(machinesPath) {
			return strings.TrimSpace(current), ""
		}
	}
	if len(entries) == 1 && strings.HasPrefix(entries[0], "@") {
		return strings.TrimSpace(current), strings.TrimSpace(entries[0][1:])
	}
	if strings.HasPrefix(strings.TrimSpace(current), "@") {
		// Old Nix would read "@a ; …" as one file name "a ; …": put the
		// file reference last.
		return strings.Join(append(entries, "@"+machinesPath), " ; "), ""
	}
	return strings.TrimSpace(current) + " ; @" + machinesPath, ""
}

// NixConfBody is the body of our managed block in nix.conf (or
// nix.custom.conf): builders that keep the user's (see MergeBuilders) and
// builders-use-substitutes. When the user's builders point at another
// machines file, body is nil and elsewhere names that file: our machines
// line goes there and nix.conf needs no change for builders.
func NixConfBody(currentBuilders, machinesPath string) (body []byte, elsewhere string, err error) {
	if strings.ContainsAny(machinesPath, " \t\r\n#;") || !path.IsAbs(machinesPath) {
		return nil, "", fmt.Errorf("machines file %q: must be an absolute path without white space, '#' or ';'", machinesPath)
	}
	if strings.ContainsAny(currentBuilders, "#\n") {
		return nil, "", fmt.Errorf("builders value %q: a '#' or newline cannot be written on one nix.conf line", currentBuilders)
	}
	value, elsewhere := MergeBuilders(currentBuilders, machinesPath)
	if elsewhere != "" {
		return []byte("builders-use-substitutes = true\n"), elsewhere, nil
	}
	return []byte("builders = " + value + "\nbuilders-use-substitutes = true\n"), "", nil
}

// NixDarwinSnippet is the nix-darwin configuration that sets up the
// builder m, for the user to paste into their configuration. m.URI must be
// "ssh-ng://user@host" (or ssh://); an integral speed factor is required
// because nix-darwin's speedFactor is an integer.
func NixDarwinSnippet(m Machine) (string, error) {
	protocol, rest, ok := strings.Cut(m.URI, "://")
	if !ok || (protocol != "ssh-ng" && protocol != "ssh") {
		return "", fmt.Errorf("builder URI %q: nix-darwin's buildMachines needs ssh-ng://user@host or ssh://user@host", m.URI)
	}
	user, host, ok := strings.Cut(rest, "@")
	if !ok {
		user, host = "", rest
	}
	if host == "" || strings.ContainsAny(host, "/:?") {
		return "", fmt.Errorf("builder URI %q: the host must be a plain name (an ssh_config alias), without port or path", m.URI)
	}
	if m.SpeedFactor != float64(int(m.SpeedFactor)) {
		return "", fmt.Errorf("speed factor %v: nix-darwin takes a whole number", m.SpeedFactor)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("nix.distributedBuilds = true;\n")
	w("nix.buildMachines = [\n  {\n")
	w("    hostName = %s;\n", nixString(host))
	if user != "" {
		w("    sshUser = %s;\n", nixString(user))
	}
	w("    protocol = %s;\n", nixString(protocol))
	w("    systems = %s;\n", nixList(m.Systems))
	w("    maxJobs = %d;\n", m.MaxJobs)
	w("    speedFactor = %d;\n", int(m.SpeedFactor))
	w("    supportedFeatures = %s;\n", nixList(m.SupportedFeatures))
	if len(m.MandatoryFeatures) > 0 {
		w("    mandatoryFeatures = %s;\n", nixList(m.MandatoryFeatures))
	}
	if m.SSHKey != "" {
		w("    sshKey = %s;\n", nixString(m.SSHKey))
	}
	if m.PublicHostKey != "" {
		w("    publicHostKey = %s;\n", nixString(m.PublicHostKey))
	}
	w("  }\n];\n")
	w("nix.settings.builders-use-substitutes = true;\n")
	return b.String(), nil
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func nixList(items []string) string {
	if len(items) == 0 {
		return "[ ]"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = nixString(s)
	}
	return "[ " + strings.Join(q, " ") + " ]"
}
