package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"
)

// BuildContext is a builder image build context ready to send to the
// engine: a tar stream and the hash that names the image.
type BuildContext struct {
	Tar []byte
	// Hash is the hex SHA-256 of Tar and the build arguments: the same
	// files with the same modes and the same arguments give the same hash,
	// on every machine and every run.
	Hash      string
	BuildArgs map[string]string
}

// DirContext is the build context of a --builder-context directory.
func DirContext(dir string) fs.FS { return os.DirFS(dir) }

// NewBuildContext packs fsys (with a Dockerfile at its root) into a tar
// stream whose bytes depend only on paths, contents and permission bits
// (entries sorted, times zeroed, owner root), and hashes it together with
// buildArgs (e.g. BASE_IMAGE), since they change the image as well.
func NewBuildContext(fsys fs.FS, buildArgs map[string]string) (BuildContext, error) {
	if _, err := fs.Stat(fsys, "Dockerfile"); err != nil {
		return BuildContext{}, fmt.Errorf("builder build context has no Dockerfile at its root: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var paths []string
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != "." {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return BuildContext{}, fmt.Errorf("read builder build context: %w", err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		// Stat follows symbolic links, so a link is sent as what it names.
		info, err := fs.Stat(fsys, p)
		if err != nil {
			return BuildContext{}, fmt.Errorf("read builder build context: %w", err)
		}
		hdr := &tar.Header{
			Name:    p,
			Mode:    int64(info.Mode().Perm()),
			ModTime: time.Unix(0, 0),
			Format:  tar.FormatPAX,
		}
		switch {
		case info.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if err := tw.WriteHeader(hdr); err != nil {
				return BuildContext{}, err
			}
		case info.Mode().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return BuildContext{}, fmt.Errorf("read builder build context: %w", err)
			}
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(data))
			if err := tw.WriteHeader(hdr); err != nil {
				return BuildContext{}, err
			}
			if _, err := tw.Write(data); err != nil {
				return BuildContext{}, err
			}
		default:
			return BuildContext{}, fmt.Errorf("builder build context: %s is neither a file nor a directory", p)
		}
	}
	if err := tw.Close(); err != nil {
		return BuildContext{}, err
	}

	h := sha256.New()
	h.Write(buf.Bytes())
	names := make([]string, 0, len(buildArgs))
	for k := range buildArgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "\x00build-arg\x00%s\x00%s", k, buildArgs[k])
	}
	return BuildContext{Tar: buf.Bytes(), Hash: hex.EncodeToString(h.Sum(nil)), BuildArgs: buildArgs}, nil
}

// ImageRef is the tag of the builder image built from a context with
// this hash: <name>:<first 12 hex digits>.
func ImageRef(name, hash string) string {
	if len(hash) > 12 {
		hash = hash[:12]
	}
	return name + ":" + hash
}

// ImageStatus reports whether the image for bc exists: the tag exists and
// its label carries the full hash (a tag collision on 12 digits, or an
// image tagged by hand, is not ours).
func ImageStatus(ctx context.Context, c Client, name string, bc BuildContext) (present bool, err error) {
	img, err := c.InspectImage(ctx, ImageRef(name, bc.Hash))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return img.Labels[LabelAssetsHash] == bc.Hash && img.Labels[LabelManaged] == "true", nil
}

// EnsureImage builds the builder image from bc unless it is present, and
// returns its reference and whether it was built. log receives the build
// output line by line.
func EnsureImage(ctx context.Context, c Client, name string, bc BuildContext, log func(string)) (ref string, built bool, err error) {
	ref = ImageRef(name, bc.Hash)
	present, err := ImageStatus(ctx, c, name, bc)
	if err != nil {
		return ref, false, err
	}
	if present {
		return ref, false, nil
	}
	err = c.BuildImage(ctx, BuildRequest{
		Context:   bc.Tar,
		Tags:      []string{ref},
		Labels:    map[string]string{LabelManaged: "true", LabelAssetsHash: bc.Hash},
		BuildArgs: bc.BuildArgs,
	}, log)
	if err != nil {
		return ref, false, err
	}
	return ref, true, nil
}
