package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Privilege is a rung of the privilege ladder of the builder container.
type Privilege int

const (
	// PrivilegeFull runs the container --privileged.
	PrivilegeFull Privilege = iota
	// PrivilegeCaps is the smallest set that keeps the Nix sandbox working
	// when the engine refuses privileged containers: SYS_ADMIN with
	// seccomp, AppArmor and systempaths unconfined.
	PrivilegeCaps
	// PrivilegeNoSandbox runs without extra privileges and with the Nix
	// sandbox off (NIXBUILDER_SANDBOX=false).
	PrivilegeNoSandbox
)

// String is the label value and the word shown to users.
func (p Privilege) String() string {
	switch p {
	case PrivilegeFull:
		return "privileged"
	case PrivilegeCaps:
		return "sys-admin"
	case PrivilegeNoSandbox:
		return "no-sandbox"
	}
	return "privilege(" + strconv.Itoa(int(p)) + ")"
}

// CapsSecurityOpt and CapsCapAdd are the settings of PrivilegeCaps, with
// systempaths=unconfined, which the API spells as empty (not nil)
// MaskedPaths and ReadonlyPaths: without it the sandbox cannot mount /proc.
var (
	CapsCapAdd      = []string{"SYS_ADMIN"}
	CapsSecurityOpt = []string{"seccomp=unconfined", "apparmor=unconfined"}
)

// SandboxEnv is the entrypoint's switch for the last rung.
const SandboxEnv = "NIXBUILDER_SANDBOX"

// ContainerSpec is the builder container as it should be.
type ContainerSpec struct {
	Name       string // container name; volumes are <Name>-state and <Name>-nix
	Image      string // image reference, ImageRef(name, hash)
	AssetsHash string
	Port       int // host port on 127.0.0.1 published to 22
	Privilege  Privilege
	// Env is extra environment, e.g. "NIXBUILDER_SUBSTITUTERS=".
	Env []string
}

// StateVolume is the volume holding authorized_keys and the host key.
func (s ContainerSpec) StateVolume() string { return s.Name + "-state" }

// NixVolume is the volume holding the builder's /nix.
func (s ContainerSpec) NixVolume() string { return s.Name + "-nix" }

// Labels are the labels the container carries.
func (s ContainerSpec) Labels() map[string]string {
	return map[string]string{
		LabelManaged:    "true",
		LabelAssetsHash: s.AssetsHash,
		LabelPort:       strconv.Itoa(s.Port),
		LabelPrivilege:  s.Privilege.String(),
	}
}

// Environment is the container's environment: Env plus the sandbox switch
// of the last rung.
func (s ContainerSpec) Environment() []string {
	env := slices.Clone(s.Env)
	if s.Privilege == PrivilegeNoSandbox {
		env = append(env, SandboxEnv+"=false")
	}
	return env
}

// Fix is what makes a Drift go away.
type Fix int

const (
	// FixStart starts the existing container.
	FixStart Fix = iota
	// FixCreate creates the missing container.
	FixCreate
	// FixRecreate removes the container (never its volumes) and creates it.
	FixRecreate
)

// Drift is one way the container differs from its spec.
type Drift struct {
	Reason string // human-readable, one line
	Fix    Fix
}

// Reasons returns the reasons of drifts.
func Reasons(drifts []Drift) []string {
	out := make([]string, len(drifts))
	for i, d := range drifts {
		out[i] = d.Reason
	}
	return out
}

// ForeignError is returned when a container with the builder's name exists
// but was not created by nixbuilder-setup.
type ForeignError struct{ Name string }

func (e *ForeignError) Error() string {
	return fmt.Sprintf("a container named %q exists that nixbuilder-setup did not create (no %s label): pass --name to use another name, or remove it with `docker rm -f %s`", e.Name, LabelManaged, e.Name)
}

// CheckOwned returns a *ForeignError unless c carries our label.
func CheckOwned(c Container) error {
	if c.Labels[LabelManaged] != "true" {
		return &ForeignError{Name: c.Name}
	}
	return nil
}

// ContainerPrivilege is the rung an existing container runs at.
func ContainerPrivilege(c Container) Privilege {
	if slices.Contains(c.Env, SandboxEnv+"=false") {
		return PrivilegeNoSandbox
	}
	if c.Privileged {
		return PrivilegeFull
	}
	if hasAll(c.CapAdd, CapsCapAdd) && hasAll(c.SecurityOpt, CapsSecurityOpt) && c.SystemPathsUnconfined {
		return PrivilegeCaps
	}
	return PrivilegeNoSandbox
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(strings.TrimPrefix(h, "CAP_"), w) || strings.EqualFold(h, w) ||
				strings.EqualFold(strings.Replace(h, ":", "=", 1), w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// DiffContainer lists how c differs from spec. found is false when the
// container does not exist. A container not carrying our label yields one
// drift whose fix would delete someone else's container: callers check
// CheckOwned first.
func DiffContainer(spec ContainerSpec, c Container, found bool) []Drift {
	if !found {
		return []Drift{{Reason: fmt.Sprintf("container %s does not exist", spec.Name), Fix: FixCreate}}
	}
	var d []Drift
	re := func(format string, args ...any) {
		d = append(d, Drift{Reason: fmt.Sprintf(format, args...), Fix: FixRecreate})
	}
	if c.Labels[LabelManaged] != "true" {
		re("container %s lacks the label %s=true", spec.Name, LabelManaged)
	}
	if c.Image != spec.Image {
		re("container %s runs image %s, want %s", spec.Name, c.Image, spec.Image)
	} else if c.Labels[LabelAssetsHash] != spec.AssetsHash {
		re("container %s has label %s=%q, want %q", spec.Name, LabelAssetsHash, c.Labels[LabelAssetsHash], spec.AssetsHash)
	}
	want := strconv.Itoa(spec.Port)
	switch {
	case len(c.Ports) == 0:
		re("port 22 of container %s is not published, want 127.0.0.1:%d", spec.Name, spec.Port)
	default:
		for _, b := range c.Ports {
			if b.HostIP != "127.0.0.1" {
				ip := b.HostIP
				if ip == "" {
					ip = "0.0.0.0"
				}
				re("port 22 of container %s is published on %s:%s, reachable from other machines; want 127.0.0.1 only", spec.Name, ip, b.HostPort)
			} else if b.HostPort != want {
				re("port 22 of container %s is published on 127.0.0.1:%s, want 127.0.0.1:%d", spec.Name, b.HostPort, spec.Port)
			}
		}
	}
	if c.Labels[LabelPort] != want && c.Labels[LabelManaged] == "true" {
		re("container %s has label %s=%q, want %q", spec.Name, LabelPort, c.Labels[LabelPort], want)
	}
	if c.RestartPolicy != "unless-stopped" {
		p := c.RestartPolicy
		if p == "" {
			p = "no"
		}
		re("container %s has restart policy %q, want \"unless-stopped\"", spec.Name, p)
	}
	have := ContainerPrivilege(c)
	switch {
	case spec.Privilege == PrivilegeNoSandbox && have != PrivilegeNoSandbox:
		re("container %s runs with the Nix sandbox on (%s), want it off", spec.Name, have)
	case spec.Privilege != PrivilegeNoSandbox && have == PrivilegeNoSandbox:
		re("container %s is neither privileged nor has the sandbox capabilities (SYS_ADMIN, seccomp/apparmor/systempaths unconfined)", spec.Name)
	}
	if !c.Init {
		re("container %s runs without an init process (zombies are not reaped)", spec.Name)
	}
	for _, m := range []struct{ vol, dst string }{{spec.StateVolume(), StateDir}, {spec.NixVolume(), NixDir}} {
		ok := false
		for _, mt := range c.Mounts {
			if mt.Destination == m.dst && mt.Type == "volume" && mt.Name == m.vol {
				ok = true
			}
		}
		if !ok {
			re("container %s does not mount volume %s at %s", spec.Name, m.vol, m.dst)
		}
	}
	if len(d) == 0 && !c.Running {
		state := c.State
		if state == "" {
			state = "not running"
		}
		d = append(d, Drift{Reason: fmt.Sprintf("container %s is not running (%s)", spec.Name, state), Fix: FixStart})
	}
	return d
}

// CheckContainer inspects the builder container and lists its drifts. An
// error is returned when Docker fails or the container is foreign.
func CheckContainer(ctx context.Context, c Client, spec ContainerSpec) (Container, []Drift, error) {
	ct, err := c.InspectContainer(ctx, spec.Name)
	if errors.Is(err, ErrNotFound) {
		return Container{}, DiffContainer(spec, Container{}, false), nil
	}
	if err != nil {
		return Container{}, nil, err
	}
	if err := CheckOwned(ct); err != nil {
		return ct, nil, err
	}
	return ct, DiffContainer(spec, ct, true), nil
}

// IsCapsError reports whether err is the engine refusing to start a
// privileged container because it cannot grant the capabilities (an engine
// that itself runs in a restricted sandbox).
func IsCapsError(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "apply caps") ||
		(strings.Contains(s, "privileged") && strings.Contains(s, "not permitted"))
}

// EnsureVolumes creates the state and store volumes when missing, labelled
// as ours; the store volume records the assets hash that seeds it.
func EnsureVolumes(ctx context.Context, c Client, spec ContainerSpec) error {
	for _, v := range []struct {
		name   string
		labels map[string]string
	}{
		{spec.StateVolume(), map[string]string{LabelManaged: "true"}},
		{spec.NixVolume(), map[string]string{LabelManaged: "true", LabelSeededFrom: spec.AssetsHash}},
	} {
		_, err := c.InspectVolume(ctx, v.name)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := c.CreateVolume(ctx, v.name, v.labels); err != nil {
			return err
		}
	}
	return nil
}

// CreateAndStart creates and starts the container of spec, creating its
// volumes when missing. When spec asks for PrivilegeFull and the engine
// refuses privileged containers, it steps down to PrivilegeCaps; it never
// steps down to PrivilegeNoSandbox by itself. It returns the rung in use.
// An existing container of that name must have been removed.
func CreateAndStart(ctx context.Context, c Client, spec ContainerSpec) (Privilege, error) {
	if err := EnsureVolumes(ctx, c, spec); err != nil {
		return spec.Privilege, err
	}
	if err := c.CreateContainer(ctx, spec); err != nil {
		return spec.Privilege, err
	}
	err := c.StartContainer(ctx, spec.Name)
	if err == nil || spec.Privilege != PrivilegeFull || !IsCapsError(err) {
		return spec.Privilege, err
	}
	if rmErr := c.RemoveContainer(ctx, spec.Name); rmErr != nil {
		return spec.Privilege, fmt.Errorf("%w (and removing the failed privileged container: %v)", err, rmErr)
	}
	spec.Privilege = PrivilegeCaps
	if err := c.CreateContainer(ctx, spec); err != nil {
		return spec.Privilege, err
	}
	return spec.Privilege, c.StartContainer(ctx, spec.Name)
}

// Reconcile makes the builder container match spec: nothing when it does,
// start when only stopped, else (re)create it. Volumes are never removed.
// It refuses to touch a container without our label.
func Reconcile(ctx context.Context, c Client, spec ContainerSpec) (Privilege, error) {
	ct, drifts, err := CheckContainer(ctx, c, spec)
	if err != nil {
		return spec.Privilege, err
	}
	if len(drifts) == 0 {
		return ContainerPrivilege(ct), nil
	}
	if len(drifts) == 1 && drifts[0].Fix == FixStart {
		return ContainerPrivilege(ct), c.StartContainer(ctx, spec.Name)
	}
	if drifts[0].Fix != FixCreate {
		if err := c.RemoveContainer(ctx, spec.Name); err != nil {
			return spec.Privilege, err
		}
	}
	return CreateAndStart(ctx, c, spec)
}

// PortHolder says who holds a host port.
type PortHolder struct {
	// Container is the name of the container publishing the port, if any.
	Container string
	// Managed is true when that container carries our label.
	Managed bool
	// Process is true when no container publishes it but the port cannot
	// be bound on 127.0.0.1: another program on this machine holds it.
	Process bool
}

// Free reports whether nobody holds the port.
func (h PortHolder) Free() bool { return h.Container == "" && !h.Process }

// String describes the holder for messages.
func (h PortHolder) String() string {
	switch {
	case h.Container != "":
		return "container " + h.Container
	case h.Process:
		return "another program on this machine"
	}
	return "nobody"
}

// FindPortHolder finds who holds host port on 127.0.0.1: a container
// publishing it (on any address) or, failing that, another process.
func FindPortHolder(ctx context.Context, c Client, port int) (PortHolder, error) {
	cs, err := c.ListContainers(ctx, ContainerFilter{PublishedPort: port})
	if err != nil {
		return PortHolder{}, err
	}
	for _, ct := range cs {
		if ct.State == "running" || ct.State == "restarting" {
			return PortHolder{Container: ct.Name, Managed: ct.Labels[LabelManaged] == "true"}, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return PortHolder{Process: true}, nil
		}
		return PortHolder{}, fmt.Errorf("check whether port %d is free: %w", port, err)
	}
	l.Close()
	return PortHolder{}, nil
}

// Managed is everything nixbuilder-setup created in an engine.
type Managed struct {
	Containers []ContainerSummary
	Volumes    []Volume
	Images     []Image
}

// ListManaged lists our containers, volumes and images (by label).
func ListManaged(ctx context.Context, c Client) (Managed, error) {
	lbl := map[string]string{LabelManaged: "true"}
	var m Managed
	var err error
	if m.Containers, err = c.ListContainers(ctx, ContainerFilter{Labels: lbl}); err != nil {
		return m, err
	}
	if m.Volumes, err = c.ListVolumes(ctx, lbl); err != nil {
		return m, err
	}
	if m.Images, err = c.ListImages(ctx, lbl); err != nil {
		return m, err
	}
	return m, nil
}

// Uninstall removes the builder container, its images and its state
// volume, and the store volume unless keepStore; only objects carrying our
// label are removed. Missing objects are not an error.
func Uninstall(ctx context.Context, c Client, name string, keepStore bool) error {
	spec := ContainerSpec{Name: name}
	ct, err := c.InspectContainer(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if err := CheckOwned(ct); err != nil {
			return err
		}
		if err := c.RemoveContainer(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	vols := []string{spec.StateVolume()}
	if !keepStore {
		vols = append(vols, spec.NixVolume())
	}
	for _, v := range vols {
		vol, err := c.InspectVolume(ctx, v)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if vol.Labels[LabelManaged] != "true" {
			return fmt.Errorf("volume %s was not created by nixbuilder-setup (no %s label); not removing it", v, LabelManaged)
		}
		if err := c.RemoveVolume(ctx, v); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	imgs, err := c.ListImages(ctx, map[string]string{LabelManaged: "true"})
	if err != nil {
		return err
	}
	for _, img := range imgs {
		for _, t := range img.Tags {
			if strings.HasPrefix(t, name+":") {
				if err := c.RemoveImage(ctx, t); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
	}
	return nil
}
