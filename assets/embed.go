// Package assets holds the default builder image build context: a
// Dockerfile, the sshd configuration and the container entrypoint. They are
// compiled into the binary so that setup works without a checkout; the
// image tag is derived from the hash of exactly these bytes.
package assets

import (
	"embed"
	"io/fs"
)

//go:embed Dockerfile sshd_config entrypoint.sh
var files embed.FS

// Context returns the builder build context as a file system whose root
// holds Dockerfile, sshd_config and entrypoint.sh.
func Context() fs.FS { return files }

// DefaultBaseImage is the pinned nixos/nix image the Dockerfile starts
// from; --base-image overrides it through the BASE_IMAGE build argument.
const DefaultBaseImage = "nixos/nix:2.28.4"
