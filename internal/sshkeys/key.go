package sshkeys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KeyComment is the comment written on the .pub line of a key generated for
// builder name, so that a key found on disk says who made it and for what.
func KeyComment(name string) string { return "nixbuilder-setup " + name }

// KeyPair is a generated key: the bytes of the private key file and of the
// .pub file, ready to be written.
type KeyPair struct {
	// Private is the OpenSSH private key file ("-----BEGIN OPENSSH PRIVATE
	// KEY-----"), unencrypted: the nix daemon runs ssh without an agent or a
	// terminal, so a passphrase would make every remote build fail.
	Private []byte
	// Public is the .pub line "ssh-ed25519 AAAA… <comment>\n".
	Public []byte
	// Key is the parsed public key.
	Key ssh.PublicKey
}

// GenerateKey makes a new ed25519 key whose .pub line carries comment (see
// KeyComment).
func GenerateKey(comment string) (KeyPair, error) {
	if strings.ContainsAny(comment, "\r\n") {
		return KeyPair{}, fmt.Errorf("generate ssh key: comment %q spans lines", comment)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode ed25519 private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode ed25519 public key: %w", err)
	}
	return KeyPair{
		Private: pem.EncodeToMemory(block),
		Public:  PublicLine(sshPub, comment),
		Key:     sshPub,
	}, nil
}

// PublicLine renders key as an authorized_keys / .pub line with an optional
// comment, ending in a newline.
func PublicLine(key ssh.PublicKey, comment string) []byte {
	line := bytes.TrimRight(ssh.MarshalAuthorizedKey(key), "\n")
	if comment != "" {
		line = append(line, ' ')
		line = append(line, comment...)
	}
	return append(line, '\n')
}

// FileFacts are the Lstat facts about the private key file that matter to
// OpenSSH and to the daemon: who owns it, its permission bits, and whether it
// is a symlink. Steps fill it from the host layer (see FactsFromFileInfo).
type FileFacts struct {
	Mode      fs.FileMode // permission bits (Mode.Perm() is compared)
	UID       int
	IsSymlink bool
}

// Expected owner and mode of the private key: the daemon runs ssh as root, and
// ssh refuses a private key that others can read.
const (
	WantKeyUID  = 0
	WantKeyMode = fs.FileMode(0o600)
	// WantPubMode is the mode of the .pub file.
	WantPubMode = fs.FileMode(0o644)
)

// ProblemKind classifies what is wrong with a key, so that callers can decide
// which problems block them (an --identity key of another type may be fine,
// an encrypted one never is).
type ProblemKind string

// The problems InspectKey reports.
const (
	ProblemUnreadable  ProblemKind = "unreadable"   // the private key does not parse
	ProblemEncrypted   ProblemKind = "encrypted"    // passphrase-protected
	ProblemNotEd25519  ProblemKind = "not-ed25519"  // another key type
	ProblemPubMissing  ProblemKind = "pub-missing"  // no .pub bytes given
	ProblemPubBad      ProblemKind = "pub-bad"      // the .pub does not parse
	ProblemPubMismatch ProblemKind = "pub-mismatch" // .pub is another key
	ProblemOwner       ProblemKind = "owner"        // not owned by root
	ProblemMode        ProblemKind = "mode"         // not 0600
	ProblemSymlink     ProblemKind = "symlink"      // the key path is a symlink
)

// KeyProblem is one thing wrong with a key, with a one-line explanation.
type KeyProblem struct {
	Kind   ProblemKind
	Detail string
}

// KeyReport is what InspectKey found.
type KeyReport struct {
	// Type is the key type ("ssh-ed25519", "ssh-rsa", …), when known. For
	// an encrypted key it is known only if the file format carries the
	// public key in the clear (the OpenSSH format does).
	Type string
	// Encrypted is true for a passphrase-protected key.
	Encrypted bool
	// Key is the public half of the private key, when it could be read.
	Key ssh.PublicKey
	// Fingerprint is Key's SHA256 fingerprint ("SHA256:…"), when known.
	Fingerprint string
	// PubMatches is true when the .pub bytes hold the private key's
	// public half.
	PubMatches bool
	// Problems lists everything wrong; empty means the key is usable by the
	// daemon as our dedicated key.
	Problems []KeyProblem
}

// OK reports whether nothing is wrong with the key.
func (r KeyReport) OK() bool { return len(r.Problems) == 0 }

// Has reports whether r holds a problem of kind k.
func (r KeyReport) Has(k ProblemKind) bool {
	for _, p := range r.Problems {
		if p.Kind == k {
			return true
		}
	}
	return false
}

func (r *KeyReport) add(k ProblemKind, format string, args ...any) {
	r.Problems = append(r.Problems, KeyProblem{Kind: k, Detail: fmt.Sprintf(format, args...)})
}

// InspectKey examines a private key file's bytes, its .pub file's bytes (nil
// when there is none) and the private key file's Lstat facts. It never fails:
// everything wrong is a problem in the report.
func InspectKey(priv, pub []byte, facts FileFacts) KeyReport {
	var r KeyReport

	raw, err := ssh.ParseRawPrivateKey(priv)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		r.Encrypted = true
		r.Key = missing.PublicKey // nil for formats without a clear public key
		r.add(ProblemEncrypted, "the private key is passphrase-protected; the nix daemon has no agent or terminal to unlock it")
	case err != nil:
		r.add(ProblemUnreadable, "the private key cannot be read: %v", err)
	default:
		signer, err := ssh.NewSignerFromKey(raw)
		if err != nil {
			r.add(ProblemUnreadable, "the private key cannot be used: %v", err)
		} else {
			r.Key = signer.PublicKey()
		}
	}
	if r.Key != nil {
		r.Type = r.Key.Type()
		r.Fingerprint = Fingerprint(r.Key)
		if r.Type != ssh.KeyAlgoED25519 {
			r.add(ProblemNotEd25519, "the key is %s, not ssh-ed25519", r.Type)
		}
	}

	switch pubKey, err := parsePub(pub); {
	case pub == nil:
		r.add(ProblemPubMissing, "the .pub file is missing")
	case err != nil:
		r.add(ProblemPubBad, "the .pub file cannot be read: %v", err)
	case r.Key == nil:
		// Nothing to compare with; the private key problem says why.
	case keysEqual(pubKey, r.Key):
		r.PubMatches = true
	default:
		r.add(ProblemPubMismatch, "the .pub file holds another key (%s) than the private key (%s)", Fingerprint(pubKey), r.Fingerprint)
	}

	if facts.IsSymlink {
		r.add(ProblemSymlink, "the key path is a symlink; it must be a regular file owned by root")
	}
	if facts.UID != WantKeyUID {
		r.add(ProblemOwner, "owned by uid %d, want root (uid 0): the daemon runs ssh as root", facts.UID)
	}
	if facts.Mode.Perm() != WantKeyMode {
		r.add(ProblemMode, "mode %04o, want %04o: ssh refuses a private key others can read", facts.Mode.Perm(), WantKeyMode)
	}
	return r
}

func parsePub(pub []byte) (ssh.PublicKey, error) {
	if pub == nil {
		return nil, errors.New("no .pub file")
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	return k, err
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}
