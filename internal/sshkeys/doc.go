// Package sshkeys holds everything nixbuilder-setup knows about OpenSSH: the
// builder's dedicated ed25519 key, the builder's pinned host key, the
// known_hosts lines that trust it under the ssh alias, the ssh_config alias
// file, and what the real OpenSSH client resolves for that alias (`ssh -G`).
//
// The editors (known_hosts, alias rendering, include detection) are pure
// bytes-in, bytes-out functions with no I/O, so the steps decide where bytes
// come from and go to. Only ResolveConfig (which runs ssh) and
// HandshakeHostKey (which dials the builder) touch the outside world.
package sshkeys
