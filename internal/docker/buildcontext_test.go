package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nixbuilder/nixbuilder-setup/assets"
)

func sampleFS() fstest.MapFS {
	return fstest.MapFS{
		"Dockerfile":    {Data: []byte("FROM scratch\n"), Mode: 0o644},
		"entrypoint.sh": {Data: []byte("#!/bin/sh\nexec sshd\n"), Mode: 0o755},
		"etc/a.conf":    {Data: []byte("a\n"), Mode: 0o600},
	}
}

func mustContext(t *testing.T, fsys fstest.MapFS, args map[string]string) BuildContext {
	t.Helper()
	bc, err := NewBuildContext(fsys, args)
	if err != nil {
		t.Fatal(err)
	}
	return bc
}

func TestBuildContextHashStable(t *testing.T) {
	a := mustContext(t, sampleFS(), nil)
	b := mustContext(t, sampleFS(), nil)
	if a.Hash != b.Hash || !bytes.Equal(a.Tar, b.Tar) {
		t.Fatalf("two packs of the same files differ: %s vs %s", a.Hash, b.Hash)
	}
	if len(a.Hash) != 64 {
		t.Fatalf("hash %q is not hex SHA-256", a.Hash)
	}

	// Modification times are not part of the hash (a fresh checkout or a
	// copy of the directory must not trigger a rebuild).
	dir := t.TempDir()
	for name, f := range sampleFS() {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	d1, err := NewBuildContext(DirContext(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("touch", "-d", "2001-01-01", filepath.Join(dir, "Dockerfile")).Run(); err != nil {
		t.Fatal(err)
	}
	d2, err := NewBuildContext(DirContext(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Hash != d2.Hash {
		t.Errorf("hash changed with the mtime only")
	}
}

func TestBuildContextHashChanges(t *testing.T) {
	base := mustContext(t, sampleFS(), nil).Hash
	changes := map[string]func(fstest.MapFS){
		"one byte":  func(m fstest.MapFS) { m["etc/a.conf"].Data = []byte("b\n") },
		"mode":      func(m fstest.MapFS) { m["entrypoint.sh"].Mode = 0o644 },
		"new file":  func(m fstest.MapFS) { m["extra"] = &fstest.MapFile{Data: nil, Mode: 0o644} },
		"rename":    func(m fstest.MapFS) { m["etc/b.conf"] = m["etc/a.conf"]; delete(m, "etc/a.conf") },
		"appended":  func(m fstest.MapFS) { m["Dockerfile"].Data = append(m["Dockerfile"].Data, '\n') },
		"no change": nil,
	}
	for name, change := range changes {
		m := sampleFS()
		if change != nil {
			change(m)
		}
		got := mustContext(t, m, nil).Hash
		if (got == base) != (change == nil) {
			t.Errorf("%s: hash %s, base %s", name, got, base)
		}
	}
	if h := mustContext(t, sampleFS(), map[string]string{"BASE_IMAGE": "x:1"}).Hash; h == base {
		t.Error("a build argument does not change the hash")
	}
	if mustContext(t, sampleFS(), map[string]string{"BASE_IMAGE": "x:1"}).Hash == mustContext(t, sampleFS(), map[string]string{"BASE_IMAGE": "x:2"}).Hash {
		t.Error("different build arguments give the same hash")
	}
}

func TestBuildContextTar(t *testing.T) {
	bc := mustContext(t, sampleFS(), nil)
	tr := tar.NewReader(bytes.NewReader(bc.Tar))
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "entrypoint.sh" && hdr.Mode != 0o755 {
			t.Errorf("entrypoint.sh mode %o", hdr.Mode)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d gid %d mtime %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
	}
	if got, want := strings.Join(names, " "), "Dockerfile entrypoint.sh etc/ etc/a.conf"; got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
	if _, err := NewBuildContext(fstest.MapFS{"x": {}}, nil); err == nil || !strings.Contains(err.Error(), "Dockerfile") {
		t.Errorf("context without Dockerfile: err = %v", err)
	}
}

func TestAssetsContext(t *testing.T) {
	bc, err := NewBuildContext(assets.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref := ImageRef("nixbuilder", bc.Hash); ref != "nixbuilder:"+bc.Hash[:12] {
		t.Errorf("ImageRef = %q", ref)
	}
}

func TestDecodeBuildOutput(t *testing.T) {
	stream := `{"stream":"Step 1/3 : FROM base\n"}
{"stream":" ---\u003e abc\n"}
{"stream":"Step 2/3 : RUN false\n"}
{"stream":" ---\u003e Running in 123\n"}
{"stream":"partial "}{"stream":"line\nlast output line\n"}
{"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"The command '/bin/sh -c false' returned a non-zero code: 1"}
`
	var lines []string
	err := decodeBuildOutput(strings.NewReader(stream), func(l string) { lines = append(lines, l) })
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError", err)
	}
	if got := strings.Join(be.Tail, "|"); got != "Step 2/3 : RUN false| ---> Running in 123|partial line|last output line" {
		t.Errorf("tail = %q", got)
	}
	if !strings.Contains(err.Error(), "returned a non-zero code") || !strings.Contains(err.Error(), "last output line") {
		t.Errorf("error text %q lacks the message or the tail", err)
	}
	if len(lines) != 6 || lines[4] != "partial line" {
		t.Errorf("lines = %q", lines)
	}

	ok := `{"stream":"Step 1/1 : FROM base\n"}
{"status":"Pulling fs layer","id":"abc","progressDetail":{}}
{"aux":{"ID":"sha256:1"}}
{"stream":"Successfully built 1\n"}
`
	lines = nil
	if err := decodeBuildOutput(strings.NewReader(ok), func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[1] != "abc Pulling fs layer" {
		t.Errorf("lines = %q", lines)
	}
	if err := decodeBuildOutput(strings.NewReader(`{"stream":`), nil); err == nil {
		t.Error("truncated JSON: no error")
	}
}

func TestProbeBinaryRunsNatively(t *testing.T) {
	sys := map[string]string{"amd64": "x86_64-linux", "arm64": "aarch64-linux"}[runtime.GOARCH]
	if runtime.GOOS != "linux" || sys == "" {
		t.Skip("needs linux on amd64 or arm64")
	}
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, ProbeBinary(sys), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(p).CombinedOutput(); err != nil {
		t.Fatalf("probe for %s: %v %s", sys, err, out)
	}
	// The other system's probe must fail where no binfmt handler runs it,
	// or the probe would prove nothing.
	other := map[string]string{"x86_64-linux": "aarch64-linux", "aarch64-linux": "x86_64-linux"}[sys]
	if m, _ := filepath.Glob("/proc/sys/fs/binfmt_misc/*" + strings.Split(other, "-")[0] + "*"); len(m) == 0 {
		q := filepath.Join(t.TempDir(), "other")
		if err := os.WriteFile(q, ProbeBinary(other), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(q).Run(); err == nil {
			t.Errorf("probe for %s ran on %s without an emulator", other, sys)
		}
	}
	if ProbeBinary("mips-linux") != nil {
		t.Error("probe for an unknown system")
	}
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		b := ProbeBinary(s)
		if len(b) < 120 || string(b[1:4]) != "ELF" {
			t.Errorf("%s probe is not an ELF file", s)
		}
	}
}
