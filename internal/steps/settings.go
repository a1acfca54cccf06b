package steps

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/nixbuilder/nixbuilder-setup/internal/host"
	"github.com/nixbuilder/nixbuilder-setup/internal/nixconf"
)

// Settings are the choices of the last setup that differ from the
// defaults. They are kept as a comment in our block of the machines file,
// so that doctor, repair and uninstall check the builder that was set up
// without the flags being repeated, and so that uninstall removes them
// with the block.
type Settings struct {
	Port           int      `json:"port,omitempty"`
	Systems        []string `json:"systems,omitempty"`
	MaxJobs        int      `json:"maxJobs,omitempty"`
	SpeedFactor    int      `json:"speedFactor,omitempty"`
	Emulation      string   `json:"emulation,omitempty"`
	BuilderContext string   `json:"builderContext,omitempty"`
	BaseImage      string   `json:"baseImage,omitempty"`
	Identity       string   `json:"identity,omitempty"`
}

const settingsPrefix = "# nixbuilder-setup settings "

// settings returns the configuration's choices that differ from the defaults.
func (c Config) settings() Settings {
	d := DefaultConfig()
	var s Settings
	if c.Port != d.Port {
		s.Port = c.Port
	}
	s.Systems = c.Systems
	s.MaxJobs = c.MaxJobs
	if c.SpeedFactor != d.SpeedFactor {
		s.SpeedFactor = c.SpeedFactor
	}
	if c.Emulation != d.Emulation {
		s.Emulation = c.Emulation
	}
	s.BuilderContext, s.BaseImage, s.Identity = c.BuilderContext, c.BaseImage, c.Identity
	return s
}

// settingsLine is the comment line recording the settings, or nothing when
// every choice is the default.
func (c Config) settingsLine() string {
	s := c.settings()
	b, _ := json.Marshal(s)
	if string(b) == "{}" {
		return ""
	}
	return settingsPrefix + string(b) + "\n"
}

// Apply fills in the choices the user did not make on this command line
// (changed reports which flags were given) from remembered settings.
func (s Settings) Apply(c *Config, changed func(flag string) bool) []string {
	var used []string
	use := func(flag string, ok bool, set func()) {
		if ok && !changed(flag) {
			set()
			used = append(used, flag)
		}
	}
	use("port", s.Port != 0, func() { c.Port = s.Port })
	use("systems", len(s.Systems) > 0, func() { c.Systems = s.Systems })
	use("max-jobs", s.MaxJobs != 0, func() { c.MaxJobs = s.MaxJobs })
	use("speed-factor", s.SpeedFactor != 0, func() { c.SpeedFactor = s.SpeedFactor })
	use("emulation", s.Emulation != "", func() { c.Emulation = s.Emulation })
	use("builder-context", s.BuilderContext != "", func() { c.BuilderContext = s.BuilderContext })
	use("base-image", s.BaseImage != "", func() { c.BaseImage = s.BaseImage })
	use("identity", s.Identity != "", func() { c.Identity = s.Identity })
	return used
}

// Remembered reads the settings of the last setup of the builder name from
// the machines file; found is false when there are none. It reads
// directly: the machines file is world-readable.
func Remembered(paths host.Paths, name string) (s Settings, path string, found bool) {
	env := &Env{Config: Config{Name: name}, Paths: paths, Files: host.LocalFiles{}, Facts: &Facts{}}
	path = env.machinesFile()
	data, err := host.LocalFiles{}.ReadFile(path)
	if err != nil {
		return s, path, false
	}
	body, ok, err := nixconf.ManagedBlock(data, name)
	if err != nil || !ok {
		return s, path, false
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, settingsPrefix); ok {
			dec := json.NewDecoder(bytes.NewReader([]byte(rest)))
			if dec.Decode(&s) == nil {
				return s, path, true
			}
		}
	}
	return s, path, false
}
