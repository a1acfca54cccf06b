package dockertest

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/nixbuilder/nixbuilder-setup/assets"
)

//go:embed testdata/testbuilder/Dockerfile
var testBuilder embed.FS

// TestBuilderContext is the builder build context the real-engine tests
// use: a Dockerfile FROM the Debian test base (build argument BASE_IMAGE,
// default nixbuilder-test-base:bookworm) plus the shipped
// assets/entrypoint.sh and assets/sshd_config, unchanged.
func TestBuilderContext() (fs.FS, error) {
	m := fstest.MapFS{}
	df, err := fs.ReadFile(testBuilder, "testdata/testbuilder/Dockerfile")
	if err != nil {
		return nil, err
	}
	m["Dockerfile"] = &fstest.MapFile{Data: df, Mode: 0o644}
	for _, name := range []string{"entrypoint.sh", "sshd_config"} {
		data, err := fs.ReadFile(assets.Context(), name)
		if err != nil {
			return nil, fmt.Errorf("read asset %s: %w", name, err)
		}
		mode := fs.FileMode(0o644)
		if name == "entrypoint.sh" {
			mode = 0o755
		}
		m[name] = &fstest.MapFile{Data: data, Mode: mode}
	}
	return m, nil
}

// WriteTestBuilderContext materialises TestBuilderContext in dir (created
// if missing), for --builder-context DIR.
func WriteTestBuilderContext(dir string) error {
	fsys, err := TestBuilderContext()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, info.Mode().Perm())
	})
}
