// Command nixbuilder-setup sets up, checks, repairs and removes a local
// Linux builder for Nix. See README.md.
package main

import (
	"os"

	"github.com/nixbuilder/nixbuilder-setup/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
