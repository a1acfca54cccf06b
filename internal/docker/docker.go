// Package docker is the narrow view of a Docker Engine that the builder
// steps need: build the builder image, create and inspect its container,
// copy files in and out of it and run commands there. Client is an
// interface so that steps are unit-tested with dockertest.Fake; Engine is
// the implementation over the Docker API, tested against a real engine.
package docker

import (
	"context"
	"errors"
	"io/fs"
	"strings"
)

// Labels on every object nixbuilder-setup creates. Objects without
// LabelManaged are never changed or removed.
const (
	LabelManaged    = "org.nixbuilder.managed"
	LabelAssetsHash = "org.nixbuilder.assets-hash"
	LabelPort       = "org.nixbuilder.port"
	LabelPrivilege  = "org.nixbuilder.privilege"
	// LabelSeededFrom is set on the /nix volume: the assets hash of the
	// image whose /nix first filled it. Docker copies an image's /nix into
	// an empty volume only, so after an image change the volume still holds
	// the old image's store.
	LabelSeededFrom = "org.nixbuilder.seeded-from"
)

// Paths inside the builder container fixed by the builder image contract.
const (
	StateDir           = "/var/lib/nixbuilder"
	AuthorizedKeysPath = StateDir + "/authorized_keys"
	HostKeyPath        = StateDir + "/ssh_host_ed25519_key"
	HostPublicKeyPath  = HostKeyPath + ".pub"
	// MarkerFile holds a token that only builds on the builder can read
	// (mapped into the sandbox at /nixbuilder-marker).
	MarkerFile = StateDir + "/marker"
	NixDir     = "/nix"
)

// ErrNotFound is returned (wrapped) when an image, container or volume
// does not exist. Test with errors.Is.
var ErrNotFound = errors.New("not found")

// Client is what the steps use of a Docker Engine. Names may be a
// container name or ID; refs an image name:tag or ID.
type Client interface {
	// Endpoint tells which engine the client talks to.
	Endpoint() Endpoint
	// ServerInfo describes the engine and the machine it runs on.
	ServerInfo(ctx context.Context) (ServerInfo, error)

	// InspectImage returns ErrNotFound when ref does not exist.
	InspectImage(ctx context.Context, ref string) (Image, error)
	// BuildImage builds req.Context, passing each line of build output to
	// log (which may be nil). A failed build returns a *BuildError.
	BuildImage(ctx context.Context, req BuildRequest, log func(line string)) error
	// RemoveImage removes ref; ErrNotFound when it does not exist.
	RemoveImage(ctx context.Context, ref string) error
	// ListImages lists images carrying all the given labels.
	ListImages(ctx context.Context, labels map[string]string) ([]Image, error)

	// InspectContainer returns ErrNotFound when name does not exist.
	InspectContainer(ctx context.Context, name string) (Container, error)
	// CreateContainer creates (does not start) the container spec describes.
	CreateContainer(ctx context.Context, spec ContainerSpec) error
	StartContainer(ctx context.Context, name string) error
	StopContainer(ctx context.Context, name string) error
	RestartContainer(ctx context.Context, name string) error
	// RemoveContainer force-removes name, never its named volumes.
	RemoveContainer(ctx context.Context, name string) error
	// ListContainers lists containers, running or not, matching f.
	ListContainers(ctx context.Context, f ContainerFilter) ([]ContainerSummary, error)

	// InspectVolume returns ErrNotFound when name does not exist.
	InspectVolume(ctx context.Context, name string) (Volume, error)
	CreateVolume(ctx context.Context, name string, labels map[string]string) error
	RemoveVolume(ctx context.Context, name string) error
	// ListVolumes lists volumes carrying all the given labels.
	ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error)

	// ReadFile reads a regular file from a container (running or not,
	// volumes included) through the Docker API.
	ReadFile(ctx context.Context, container, path string) ([]byte, error)
	// WriteFile writes a file owned by root with the given mode into a
	// container (running or not, volumes included); the directory must
	// exist.
	WriteFile(ctx context.Context, container, path string, data []byte, mode fs.FileMode) error
	// Exec runs argv (no shell) in a running container as root. A non-zero
	// exit is reported in ExecResult, not as an error.
	Exec(ctx context.Context, container string, argv []string) (ExecResult, error)

	Close() error
}

// ServerInfo is what the docker step and the machines line need to know
// about the engine.
type ServerInfo struct {
	Version         string // engine version, e.g. "20.10.24"
	APIVersion      string // negotiated API version
	OperatingSystem string // e.g. "Docker Desktop", "Debian GNU/Linux 12 (bookworm)"
	OSType          string // "linux"
	Arch            string // e.g. "x86_64", "aarch64"
	CPUs            int
	MemoryBytes     int64
	Name            string
}

// Image is an inspected image.
type Image struct {
	ID     string
	Tags   []string
	Labels map[string]string
}

// BuildRequest is one image build.
type BuildRequest struct {
	// Context is an uncompressed tar stream holding a Dockerfile at its root.
	Context []byte
	Tags    []string
	Labels  map[string]string
	// BuildArgs are passed as --build-arg NAME=VALUE.
	BuildArgs map[string]string
}

// BuildError is a failed image build. Tail holds the last lines of output
// of the step that failed.
type BuildError struct {
	Message string
	Tail    []string
}

func (e *BuildError) Error() string {
	msg := "docker build failed: " + e.Message
	if len(e.Tail) > 0 {
		msg += "\n  | " + strings.Join(e.Tail, "\n  | ")
	}
	return msg
}

// Container is the part of an inspected container that the spec covers.
type Container struct {
	ID            string
	Name          string // without the leading "/"
	Image         string // the image reference it was created from (Config.Image)
	ImageID       string
	Labels        map[string]string
	Env           []string
	State         string // "running", "exited", "created", …
	Running       bool
	RestartCount  int
	RestartPolicy string
	Privileged    bool
	Init          bool
	CapAdd        []string
	SecurityOpt   []string
	// SystemPathsUnconfined is --security-opt systempaths=unconfined: no
	// masked or read-only paths under /proc and /sys.
	SystemPathsUnconfined bool
	// Ports are the host bindings of the container's port 22/tcp.
	Ports  []PortBinding
	Mounts []Mount
}

// PortBinding is one host address a container port is published on.
type PortBinding struct {
	HostIP   string
	HostPort string
}

// Mount is one volume or bind mount of a container.
type Mount struct {
	Type        string // "volume", "bind", …
	Name        string // volume name
	Source      string
	Destination string
}

// ContainerSummary is one entry of ListContainers.
type ContainerSummary struct {
	ID     string
	Name   string
	Image  string
	State  string
	Labels map[string]string
}

// ContainerFilter selects containers for ListContainers. Zero fields do
// not filter.
type ContainerFilter struct {
	Labels map[string]string
	// PublishedPort selects containers publishing this host port.
	PublishedPort int
	Name          string
}

// Volume is an inspected volume.
type Volume struct {
	Name       string
	Labels     map[string]string
	Mountpoint string
}

// ExecResult is the outcome of Exec.
type ExecResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}
