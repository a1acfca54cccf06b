package nixversion

// Version boundaries, with where they were checked:
//
//   - `nix config show`: upstream Nix 2.20.0 renamed `nix show-config` to
//     `nix config show` (NixOS/nix doc/manual/source/release-notes/rl-2.20.md,
//     "Rename `nix show-config` to `nix config show`", #7672/#9477). Lix took
//     the same rename into 2.90.0 (Lix release notes, "rename 'nix
//     show-config' to 'nix config show'", cl/993), so every Lix has it.
//   - `nix store info`: added as the new name of `nix store ping` by
//     NixOS/nix#9150 (merged October 2023, first released in 2.19.0);
//     NixOS/nix#9349 shows 2.18.1 answering "'info' is not a recognised
//     command", and #11154/#11671 show 2.2x warning that `nix store ping` is
//     a deprecated alias. Lix forked before that and registers only
//     {"store", "ping"} (lix-project/lix lix/nix/ping-store.cc).
//   - nix-command: still an experimental feature in upstream Nix (2.34's
//     `nix --help` opens with "This program is experimental") and in Lix;
//     Nix 2.4 made it experimental and added `--extra-experimental-features`,
//     so older Nix neither needs nor accepts the flag. Determinate Nix enables
//     it by default. Field notes (Debian 2.8): `nix show-config` and
//     `nix store ping` fail without `--extra-experimental-features nix-command`.
//   - ssh-ng ports: upstream Nix 2.31.0 added `user@address:port` in store
//     URIs (rl-2.31.md, "Add support for `user@address:port` syntax in store
//     URIs", #7044/#3425); before it Nix passed "host:port" to ssh as the host
//     name ("Could not resolve hostname 127.0.0.1:2222", reproduced on 2.8).
//     Lix has not taken that change.

// experimentalFlag is what every new-CLI command needs on Nix and Lix unless
// nix.conf enables nix-command. Passing it when the feature is already on is
// harmless.
var experimentalFlag = []string{"--extra-experimental-features", "nix-command"}

// HasConfigShow reports whether `nix config show` exists; older Nix only
// knows `nix show-config`.
func (i Info) HasConfigShow() bool {
	switch i.Flavor {
	case FlavorLix:
		return true
	default:
		return i.Version.AtLeast(2, 20, 0)
	}
}

// HasStoreInfo reports whether `nix store info` exists; older Nix and Lix
// only know `nix store ping`.
func (i Info) HasStoreInfo() bool {
	switch i.Flavor {
	case FlavorLix:
		return false
	default:
		return i.Version.AtLeast(2, 19, 0)
	}
}

// NeedsNixCommandFlag reports whether new-CLI commands (`nix config show`,
// `nix store info`, `nix build`) need `--extra-experimental-features
// nix-command` when nix.conf does not enable the feature.
func (i Info) NeedsNixCommandFlag() bool {
	switch i.Flavor {
	case FlavorDeterminate:
		return false
	default:
		// Before 2.4 the new CLI was not gated and the flag does not exist.
		return i.Version.AtLeast(2, 4, 0)
	}
}

// SSHNGPortBug reports whether a port inside an ssh-ng:// URI is passed to
// ssh as part of the host name. Only informational: the builder's ssh_config
// alias carries the port, so our URIs never hold one.
func (i Info) SSHNGPortBug() bool {
	if i.Flavor == FlavorLix {
		return true
	}
	return !i.Version.AtLeast(2, 31, 0)
}

// NixCommandArgs returns the arguments that go right after "nix" for a
// new-CLI command to run whatever nix.conf says: the experimental-features
// flag when this Nix needs it, otherwise nothing.
func (i Info) NixCommandArgs() []string {
	if i.NeedsNixCommandFlag() {
		return append([]string(nil), experimentalFlag...)
	}
	return nil
}

// ConfigShowArgs returns the arguments after "nix" that print the effective
// configuration: `config show` or, before 2.20, `show-config`, with the
// experimental flag when needed.
func (i Info) ConfigShowArgs() []string {
	args := i.NixCommandArgs()
	if i.HasConfigShow() {
		return append(args, "config", "show")
	}
	return append(args, "show-config")
}

// StoreInfoArgs returns the arguments after "nix" that test whether the
// store at url answers (`store info`, or `store ping` before 2.19 and on
// Lix), with the experimental flag when needed. An empty url tests the
// default store.
func (i Info) StoreInfoArgs(url string) []string {
	args := i.NixCommandArgs()
	if i.HasStoreInfo() {
		args = append(args, "store", "info")
	} else {
		args = append(args, "store", "ping")
	}
	if url != "" {
		args = append(args, "--store", url)
	}
	return args
}
