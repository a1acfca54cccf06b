package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// Engine is the Client over the Docker API.
type Engine struct {
	api      *client.Client
	endpoint Endpoint
}

var _ Client = (*Engine)(nil)

// Connect opens a client for ep. It does not contact the engine; the first
// call does (ServerInfo is the cheap one to check reachability).
func Connect(ep Endpoint) (*Engine, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if ep.FromEnv {
		opts = append(opts, client.FromEnv)
	} else {
		opts = append(opts, client.WithHost(ep.Host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker endpoint %s (from %s): %w", ep.Host, ep.Source, err)
	}
	return &Engine{api: api, endpoint: ep}, nil
}

// Endpoint implements Client.
func (e *Engine) Endpoint() Endpoint { return e.endpoint }

// Close implements Client.
func (e *Engine) Close() error { return e.api.Close() }

// wrap adds what was being done and turns the engine's not-found into
// ErrNotFound, and an unreachable engine into a message saying what to do.
func (e *Engine) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w (%v)", what, ErrNotFound, err)
	}
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: cannot reach the Docker Engine at %s (from %s): start %s, or choose another context with `docker context use`: %w",
			what, e.endpoint.Host, e.endpoint.Source, e.endpoint.Product, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ServerInfo implements Client.
func (e *Engine) ServerInfo(ctx context.Context) (ServerInfo, error) {
	info, err := e.api.Info(ctx)
	if err != nil {
		return ServerInfo{}, e.wrap(err, "docker info")
	}
	return ServerInfo{
		Version:         info.ServerVersion,
		APIVersion:      e.api.ClientVersion(),
		OperatingSystem: info.OperatingSystem,
		OSType:          info.OSType,
		Arch:            info.Architecture,
		CPUs:            info.NCPU,
		MemoryBytes:     info.MemTotal,
		Name:            info.Name,
	}, nil
}

// InspectImage implements Client.
func (e *Engine) InspectImage(ctx context.Context, ref string) (Image, error) {
	img, err := e.api.ImageInspect(ctx, ref)
	if err != nil {
		return Image{}, e.wrap(err, "inspect image %s", ref)
	}
	out := Image{ID: img.ID, Tags: img.RepoTags}
	if img.Config != nil {
		out.Labels = img.Config.Labels
	}
	return out, nil
}

// ListImages implements Client.
func (e *Engine) ListImages(ctx context.Context, labels map[string]string) ([]Image, error) {
	imgs, err := e.api.ImageList(ctx, image.ListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, e.wrap(err, "list images")
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, Image{ID: img.ID, Tags: img.RepoTags, Labels: img.Labels})
	}
	return out, nil
}

// RemoveImage implements Client.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	_, err := e.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return e.wrap(err, "remove image %s", ref)
}

// BuildImage implements Client. It uses the classic builder, which every
// engine API version serves without a BuildKit session.
func (e *Engine) BuildImage(ctx context.Context, req BuildRequest, log func(string)) error {
	args := make(map[string]*string, len(req.BuildArgs))
	for k, v := range req.BuildArgs {
		args[k] = &v
	}
	resp, err := e.api.ImageBuild(ctx, bytes.NewReader(req.Context), build.ImageBuildOptions{
		Tags:        req.Tags,
		Labels:      req.Labels,
		BuildArgs:   args,
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
		Version:     build.BuilderV1,
	})
	if err != nil {
		return e.wrap(err, "docker build %s", strings.Join(req.Tags, " "))
	}
	defer resp.Body.Close()
	return decodeBuildOutput(resp.Body, log)
}

// tailLines is how many lines of the failing step a BuildError keeps.
const tailLines = 25

// decodeBuildOutput reads the engine's JSON message stream, hands each
// output line to log and returns a *BuildError when the build failed.
func decodeBuildOutput(r io.Reader, log func(string)) error {
	dec := json.NewDecoder(r)
	var step []string // output since the last "Step n/m" line
	var partial string
	emit := func(line string) {
		if strings.HasPrefix(line, "Step ") {
			step = step[:0]
		}
		step = append(step, line)
		if len(step) > tailLines {
			step = step[len(step)-tailLines:]
		}
		if log != nil {
			log(line)
		}
	}
	for {
		var msg jsonmessage.JSONMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("read docker build output: %w", err)
		}
		if msg.Error != nil {
			if partial != "" {
				emit(partial)
			}
			return &BuildError{Message: strings.TrimSpace(msg.Error.Message), Tail: append([]string(nil), step...)}
		}
		text := msg.Stream
		if text == "" && msg.Status != "" {
			text = msg.Status
			if msg.Progress != nil || msg.ID != "" {
				text = strings.TrimSpace(msg.ID + " " + msg.Status)
			}
			text += "\n"
		}
		partial += text
		for {
			i := strings.IndexByte(partial, '\n')
			if i < 0 {
				break
			}
			line := strings.TrimRight(partial[:i], "\r")
			partial = partial[i+1:]
			emit(line)
		}
	}
	if partial != "" {
		emit(partial)
	}
	return nil
}

// InspectContainer implements Client.
func (e *Engine) InspectContainer(ctx context.Context, name string) (Container, error) {
	ct, err := e.api.ContainerInspect(ctx, name)
	if err != nil {
		return Container{}, e.wrap(err, "inspect container %s", name)
	}
	out := Container{ID: ct.ID, Name: strings.TrimPrefix(ct.Name, "/"), ImageID: ct.Image, RestartCount: ct.RestartCount}
	if ct.Config != nil {
		out.Image = ct.Config.Image
		out.Labels = ct.Config.Labels
		out.Env = ct.Config.Env
	}
	if ct.State != nil {
		out.State = ct.State.Status
		out.Running = ct.State.Running
	}
	if hc := ct.HostConfig; hc != nil {
		out.RestartPolicy = string(hc.RestartPolicy.Name)
		out.Privileged = hc.Privileged
		out.Init = hc.Init != nil && *hc.Init
		out.CapAdd = hc.CapAdd
		out.SecurityOpt = hc.SecurityOpt
		out.SystemPathsUnconfined = hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0 && len(hc.ReadonlyPaths) == 0
		for _, b := range hc.PortBindings[nat.Port("22/tcp")] {
			out.Ports = append(out.Ports, PortBinding{HostIP: b.HostIP, HostPort: b.HostPort})
		}
	}
	for _, m := range ct.Mounts {
		out.Mounts = append(out.Mounts, Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination})
	}
	return out, nil
}

// CreateContainer implements Client.
func (e *Engine) CreateContainer(ctx context.Context, spec ContainerSpec) error {
	init := true
	hc := &container.HostConfig{
		Init:          &init,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		PortBindings: nat.PortMap{
			"22/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(spec.Port)}},
		},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: spec.StateVolume(), Target: StateDir},
			{Type: mount.TypeVolume, Source: spec.NixVolume(), Target: NixDir},
		},
	}
	switch spec.Privilege {
	case PrivilegeFull:
		hc.Privileged = true
	case PrivilegeCaps:
		hc.CapAdd = CapsCapAdd
		hc.SecurityOpt = CapsSecurityOpt
		hc.MaskedPaths = []string{}
		hc.ReadonlyPaths = []string{}
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Hostname:     spec.Name,
		Labels:       spec.Labels(),
		Env:          spec.Environment(),
		ExposedPorts: nat.PortSet{"22/tcp": struct{}{}},
	}
	_, err := e.api.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	return e.wrap(err, "create container %s", spec.Name)
}

// StartContainer implements Client.
func (e *Engine) StartContainer(ctx context.Context, name string) error {
	return e.wrap(e.api.ContainerStart(ctx, name, container.StartOptions{}), "start container %s", name)
}

// StopContainer implements Client.
func (e *Engine) StopContainer(ctx context.Context, name string) error {
	return e.wrap(e.api.ContainerStop(ctx, name, container.StopOptions{}), "stop container %s", name)
}

// RestartContainer implements Client.
func (e *Engine) RestartContainer(ctx context.Context, name string) error {
	return e.wrap(e.api.ContainerRestart(ctx, name, container.StopOptions{}), "restart container %s", name)
}

// RemoveContainer implements Client.
func (e *Engine) RemoveContainer(ctx context.Context, name string) error {
	return e.wrap(e.api.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}), "remove container %s", name)
}

// ListContainers implements Client.
func (e *Engine) ListContainers(ctx context.Context, f ContainerFilter) ([]ContainerSummary, error) {
	args := labelFilter(f.Labels)
	if f.PublishedPort != 0 {
		args.Add("publish", strconv.Itoa(f.PublishedPort))
	}
	if f.Name != "" {
		args.Add("name", "^/"+f.Name+"$")
	}
	cs, err := e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, e.wrap(err, "list containers")
	}
	out := make([]ContainerSummary, 0, len(cs))
	for _, c := range cs {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, ContainerSummary{ID: c.ID, Name: name, Image: c.Image, State: string(c.State), Labels: c.Labels})
	}
	return out, nil
}

func labelFilter(labels map[string]string) filters.Args {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	return args
}

// InspectVolume implements Client.
func (e *Engine) InspectVolume(ctx context.Context, name string) (Volume, error) {
	v, err := e.api.VolumeInspect(ctx, name)
	if err != nil {
		return Volume{}, e.wrap(err, "inspect volume %s", name)
	}
	return Volume{Name: v.Name, Labels: v.Labels, Mountpoint: v.Mountpoint}, nil
}

// CreateVolume implements Client.
func (e *Engine) CreateVolume(ctx context.Context, name string, labels map[string]string) error {
	_, err := e.api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
	return e.wrap(err, "create volume %s", name)
}

// RemoveVolume implements Client.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	return e.wrap(e.api.VolumeRemove(ctx, name, false), "remove volume %s", name)
}

// ListVolumes implements Client.
func (e *Engine) ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error) {
	resp, err := e.api.VolumeList(ctx, volume.ListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, e.wrap(err, "list volumes")
	}
	out := make([]Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		out = append(out, Volume{Name: v.Name, Labels: v.Labels, Mountpoint: v.Mountpoint})
	}
	return out, nil
}

// maxReadFile bounds ReadFile: it reads keys and small configuration.
const maxReadFile = 16 << 20

// ReadFile implements Client.
func (e *Engine) ReadFile(ctx context.Context, name, p string) ([]byte, error) {
	rc, _, err := e.api.CopyFromContainer(ctx, name, p)
	if err != nil {
		return nil, e.wrap(err, "read %s from container %s", p, name)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("read %s from container %s: %w", p, name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(io.LimitReader(tr, maxReadFile))
			if err != nil {
				return nil, fmt.Errorf("read %s from container %s: %w", p, name, err)
			}
			return data, nil
		case tar.TypeDir:
			return nil, fmt.Errorf("read %s from container %s: is a directory", p, name)
		case tar.TypeSymlink:
			return nil, fmt.Errorf("read %s from container %s: is a symbolic link to %s", p, name, hdr.Linkname)
		}
	}
}

// WriteFile implements Client.
func (e *Engine) WriteFile(ctx context.Context, name, p string, data []byte, mode fs.FileMode) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path.Base(p),
		Mode:     int64(mode.Perm()),
		Size:     int64(len(data)),
		Uid:      0,
		Gid:      0,
		ModTime:  time.Now(),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	err := e.api.CopyToContainer(ctx, name, path.Dir(p), &buf, container.CopyToContainerOptions{})
	return e.wrap(err, "write %s into container %s", p, name)
}

// Exec implements Client.
func (e *Engine) Exec(ctx context.Context, name string, argv []string) (ExecResult, error) {
	what := fmt.Sprintf("docker exec %s %s", name, strings.Join(argv, " "))
	created, err := e.api.ContainerExecCreate(ctx, name, container.ExecOptions{
		User:         "root",
		Cmd:          argv,
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return ExecResult{}, e.wrap(err, "%s", what)
	}
	att, err := e.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, e.wrap(err, "%s", what)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		return ExecResult{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: read output: %w", what, err)
	}
	res := ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	// The exec may still be marked running for a moment after its output
	// closes.
	for i := 0; ; i++ {
		ins, err := e.api.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return res, e.wrap(err, "%s", what)
		}
		if !ins.Running || i >= 50 {
			res.ExitCode = ins.ExitCode
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
