// Package nixconf reads and edits Nix's configuration files, nix.conf and
// the machines file, without losing a byte of what the user wrote, finds out
// which file our settings belong in, and asks the real nix whether a
// candidate file is acceptable before anything installs it.
//
// The editors are pure: bytes in, bytes out, no I/O. Only Validate and
// ValidateMachines run a program.
//
// The grammar follows what Nix itself does (src/libutil/config.cc and
// src/libstore/machines.cc), not what its manual suggests:
//
//   - nix.conf is read line by line (split on "\n"). A "#" starts a comment
//     wherever it appears, even inside a value. The rest is split into words
//     on spaces, tabs and "\r", so CRLF files and tab-separated lines are
//     accepted as they are. A line with no words is ignored.
//   - A setting is NAME, then the word "=", then any number of words: the "="
//     must stand alone ("name=value" is a syntax error, which breaks every
//     nix command). The value is its words joined by single spaces.
//   - "include FILE" and "!include FILE" (exactly two words) read FILE,
//     relative to the including file; "!include" ignores a missing file.
//   - Later settings override earlier ones. "extra-NAME" appends to a list
//     setting; "builders" is a plain string, so "extra-builders" is an
//     unknown setting, which Nix only warns about.
//   - builders holds machines separated by ";" or newlines, or "@FILE".
//   - A machines line has up to eight fields separated by white space, "-"
//     meaning the default: store URI, systems (comma-separated), SSH
//     identity, max jobs, speed factor, supported features, mandatory
//     features, base64 of the host's public key line. Nix 2.8 parses the
//     speed factor as an unsigned integer, newer Nix as a float; Nix 2.8
//     also refuses a machines line holding only white space (or white space
//     before a "#", or the "\r" of an empty CRLF line), which newer Nix
//     skips. ParseMachines accepts both; ValidateMachines asks the nix at
//     hand.
//
// Our own lines live in a managed block,
//
//	# BEGIN nixbuilder-setup <name>
//	…
//	# END nixbuilder-setup <name>
//
// which UpsertManagedBlock adds or replaces and RemoveManagedBlock takes out
// again, restoring the original bytes exactly.
package nixconf
