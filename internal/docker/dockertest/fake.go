// Package dockertest provides a fake docker.Client for unit tests of the
// steps, and the test builder build context for the real-engine tests.
package dockertest

import (
	"context"
	"fmt"
	"io/fs"
	"sync"

	"github.com/nixbuilder/nixbuilder-setup/internal/docker"
)

// Fake implements docker.Client with one function field per method, as the
// docker CLI's tests do: a test sets the fields it expects to be called. A
// method whose field is nil fails the call with an error naming it, so an
// unexpected call is visible. Calls records the method names in order.
type Fake struct {
	EndpointValue docker.Endpoint

	ServerInfoFunc       func(ctx context.Context) (docker.ServerInfo, error)
	InspectImageFunc     func(ctx context.Context, ref string) (docker.Image, error)
	BuildImageFunc       func(ctx context.Context, req docker.BuildRequest, log func(string)) error
	RemoveImageFunc      func(ctx context.Context, ref string) error
	ListImagesFunc       func(ctx context.Context, labels map[string]string) ([]docker.Image, error)
	InspectContainerFunc func(ctx context.Context, name string) (docker.Container, error)
	CreateContainerFunc  func(ctx context.Context, spec docker.ContainerSpec) error
	StartContainerFunc   func(ctx context.Context, name string) error
	StopContainerFunc    func(ctx context.Context, name string) error
	RestartContainerFunc func(ctx context.Context, name string) error
	RemoveContainerFunc  func(ctx context.Context, name string) error
	ListContainersFunc   func(ctx context.Context, f docker.ContainerFilter) ([]docker.ContainerSummary, error)
	InspectVolumeFunc    func(ctx context.Context, name string) (docker.Volume, error)
	CreateVolumeFunc     func(ctx context.Context, name string, labels map[string]string) error
	RemoveVolumeFunc     func(ctx context.Context, name string) error
	ListVolumesFunc      func(ctx context.Context, labels map[string]string) ([]docker.Volume, error)
	ReadFileFunc         func(ctx context.Context, container, path string) ([]byte, error)
	WriteFileFunc        func(ctx context.Context, container, path string, data []byte, mode fs.FileMode) error
	ExecFunc             func(ctx context.Context, container string, argv []string) (docker.ExecResult, error)

	mu    sync.Mutex
	calls []string
}

var _ docker.Client = (*Fake)(nil)

// Calls returns the names of the methods called so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Called reports how many times method was called.
func (f *Fake) Called(method string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == method {
			n++
		}
	}
	return n
}

func (f *Fake) record(method string) {
	f.mu.Lock()
	f.calls = append(f.calls, method)
	f.mu.Unlock()
}

func unexpected(method string) error {
	return fmt.Errorf("dockertest.Fake: unexpected call to %s (its func field is nil)", method)
}

// Endpoint implements docker.Client.
func (f *Fake) Endpoint() docker.Endpoint { return f.EndpointValue }

// Close implements docker.Client.
func (f *Fake) Close() error { return nil }

// ServerInfo implements docker.Client.
func (f *Fake) ServerInfo(ctx context.Context) (docker.ServerInfo, error) {
	f.record("ServerInfo")
	if f.ServerInfoFunc == nil {
		return docker.ServerInfo{}, unexpected("ServerInfo")
	}
	return f.ServerInfoFunc(ctx)
}

// InspectImage implements docker.Client.
func (f *Fake) InspectImage(ctx context.Context, ref string) (docker.Image, error) {
	f.record("InspectImage")
	if f.InspectImageFunc == nil {
		return docker.Image{}, unexpected("InspectImage")
	}
	return f.InspectImageFunc(ctx, ref)
}

// BuildImage implements docker.Client.
func (f *Fake) BuildImage(ctx context.Context, req docker.BuildRequest, log func(string)) error {
	f.record("BuildImage")
	if f.BuildImageFunc == nil {
		return unexpected("BuildImage")
	}
	return f.BuildImageFunc(ctx, req, log)
}

// RemoveImage implements docker.Client.
func (f *Fake) RemoveImage(ctx context.Context, ref string) error {
	f.record("RemoveImage")
	if f.RemoveImageFunc == nil {
		return unexpected("RemoveImage")
	}
	return f.RemoveImageFunc(ctx, ref)
}

// ListImages implements docker.Client.
func (f *Fake) ListImages(ctx context.Context, labels map[string]string) ([]docker.Image, error) {
	f.record("ListImages")
	if f.ListImagesFunc == nil {
		return nil, unexpected("ListImages")
	}
	return f.ListImagesFunc(ctx, labels)
}

// InspectContainer implements docker.Client.
func (f *Fake) InspectContainer(ctx context.Context, name string) (docker.Container, error) {
	f.record("InspectContainer")
	if f.InspectContainerFunc == nil {
		return docker.Container{}, unexpected("InspectContainer")
	}
	return f.InspectContainerFunc(ctx, name)
}

// CreateContainer implements docker.Client.
func (f *Fake) CreateContainer(ctx context.Context, spec docker.ContainerSpec) error {
	f.record("CreateContainer")
	if f.CreateContainerFunc == nil {
		return unexpected("CreateContainer")
	}
	return f.CreateContainerFunc(ctx, spec)
}

// StartContainer implements docker.Client.
func (f *Fake) StartContainer(ctx context.Context, name string) error {
	f.record("StartContainer")
	if f.StartContainerFunc == nil {
		return unexpected("StartContainer")
	}
	return f.StartContainerFunc(ctx, name)
}

// StopContainer implements docker.Client.
func (f *Fake) StopContainer(ctx context.Context, name string) error {
	f.record("StopContainer")
	if f.StopContainerFunc == nil {
		return unexpected("StopContainer")
	}
	return f.StopContainerFunc(ctx, name)
}

// RestartContainer implements docker.Client.
func (f *Fake) RestartContainer(ctx context.Context, name string) error {
	f.record("RestartContainer")
	if f.RestartContainerFunc == nil {
		return unexpected("RestartContainer")
	}
	return f.RestartContainerFunc(ctx, name)
}

// RemoveContainer implements docker.Client.
func (f *Fake) RemoveContainer(ctx context.Context, name string) error {
	f.record("RemoveContainer")
	if f.RemoveContainerFunc == nil {
		return unexpected("RemoveContainer")
	}
	return f.RemoveContainerFunc(ctx, name)
}

// ListContainers implements docker.Client.
func (f *Fake) ListContainers(ctx context.Context, filter docker.ContainerFilter) ([]docker.ContainerSummary, error) {
	f.record("ListContainers")
	if f.ListContainersFunc == nil {
		return nil, unexpected("ListContainers")
	}
	return f.ListContainersFunc(ctx, filter)
}

// InspectVolume implements docker.Client.
func (f *Fake) InspectVolume(ctx context.Context, name string) (docker.Volume, error) {
	f.record("InspectVolume")
	if f.InspectVolumeFunc == nil {
		return docker.Volume{}, unexpected("InspectVolume")
	}
	return f.InspectVolumeFunc(ctx, name)
}

// CreateVolume implements docker.Client.
func (f *Fake) CreateVolume(ctx context.Context, name string, labels map[string]string) error {
	f.record("CreateVolume")
	if f.CreateVolumeFunc == nil {
		return unexpected("CreateVolume")
	}
	return f.CreateVolumeFunc(ctx, name, labels)
}

// RemoveVolume implements docker.Client.
func (f *Fake) RemoveVolume(ctx context.Context, name string) error {
	f.record("RemoveVolume")
	if f.RemoveVolumeFunc == nil {
		return unexpected("RemoveVolume")
	}
	return f.RemoveVolumeFunc(ctx, name)
}

// ListVolumes implements docker.Client.
func (f *Fake) ListVolumes(ctx context.Context, labels map[string]string) ([]docker.Volume, error) {
	f.record("ListVolumes")
	if f.ListVolumesFunc == nil {
		return nil, unexpected("ListVolumes")
	}
	return f.ListVolumesFunc(ctx, labels)
}

// ReadFile implements docker.Client.
func (f *Fake) ReadFile(ctx context.Context, container, path string) ([]byte, error) {
	f.record("ReadFile")
	if f.ReadFileFunc == nil {
		return nil, unexpected("ReadFile")
	}
	return f.ReadFileFunc(ctx, container, path)
}

// WriteFile implements docker.Client.
func (f *Fake) WriteFile(ctx context.Context, container, path string, data []byte, mode fs.FileMode) error {
	f.record("WriteFile")
	if f.WriteFileFunc == nil {
		return unexpected("WriteFile")
	}
	return f.WriteFileFunc(ctx, container, path, data, mode)
}

// Exec implements docker.Client.
func (f *Fake) Exec(ctx context.Context, container string, argv []string) (docker.ExecResult, error) {
	f.record("Exec")
	if f.ExecFunc == nil {
		return docker.ExecResult{}, unexpected("Exec")
	}
	return f.ExecFunc(ctx, container, argv)
}

// NotFound is an error wrapping docker.ErrNotFound, for fake funcs.
func NotFound(what string) error {
	return fmt.Errorf("%s: %w", what, docker.ErrNotFound)
}

// HealthyContainer is the inspected container that spec describes, running
// as it should: a starting point for drift tests.
func HealthyContainer(spec docker.ContainerSpec) docker.Container {
	c := docker.Container{
		ID:            "0123456789ab",
		Name:          spec.Name,
		Image:         spec.Image,
		ImageID:       "sha256:feed",
		Labels:        spec.Labels(),
		Env:           spec.Environment(),
		State:         "running",
		Running:       true,
		RestartPolicy: "unless-stopped",
		Init:          true,
		Ports:         []docker.PortBinding{{HostIP: "127.0.0.1", HostPort: fmt.Sprint(spec.Port)}},
		Mounts: []docker.Mount{
			{Type: "volume", Name: spec.StateVolume(), Destination: docker.StateDir},
			{Type: "volume", Name: spec.NixVolume(), Destination: docker.NixDir},
		},
	}
	switch spec.Privilege {
	case docker.PrivilegeFull:
		c.Privileged = true
	case docker.PrivilegeCaps:
		c.CapAdd = docker.CapsCapAdd
		c.SecurityOpt = docker.CapsSecurityOpt
		c.SystemPathsUnconfined = true
	}
	return c
}
