package sshkeys

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// ParseHostKey parses the builder's host key .pub bytes (as read from the
// container through the Docker API: "ssh-ed25519 AAAA… [comment]").
func ParseHostKey(pub []byte) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return nil, fmt.Errorf("parse builder host key %q: %w", abbreviate(pub), err)
	}
	return k, nil
}

// Fingerprint returns key's SHA256 fingerprint as `ssh-keygen -l` prints it
// ("SHA256:…", unpadded base64).
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// HostKeyMismatchError says that the builder presented another host key than
// the one pinned from the Docker API. It is never resolved automatically:
// something else may be answering on the port.
type HostKeyMismatchError struct {
	Addr      string // where the handshake went, when known
	Pinned    ssh.PublicKey
	Presented ssh.PublicKey
}

func (e *HostKeyMismatchError) Error() string {
	where := "the builder"
	if e.Addr != "" {
		where = e.Addr
	}
	return fmt.Sprintf("host key mismatch: the builder's key (read through Docker) is %s %s, but %s presented %s %s: possible impersonation; not accepted",
		e.Pinned.Type(), Fingerprint(e.Pinned), where, e.Presented.Type(), Fingerprint(e.Presented))
}

// CrossCheck compares the pinned host key (from the Docker API) with the key
// presented in a real handshake; a difference is a *HostKeyMismatchError.
func CrossCheck(pinned, presented ssh.PublicKey) error {
	if pinned == nil || presented == nil {
		return errors.New("cross-check host key: a key is missing")
	}
	if keysEqual(pinned, presented) {
		return nil
	}
	return &HostKeyMismatchError{Pinned: pinned, Presented: presented}
}

// errGotHostKey ends the handshake as soon as the host key is known: nothing
// after the key exchange matters and no credentials are ever offered.
var errGotHostKey = errors.New("host key recorded")

// HandshakeHostKey connects to addr ("127.0.0.1:2222") and returns the
// ed25519 host key the server presents in the SSH key exchange. It offers no
// credentials: the handshake stops once the key has been received and
// verified by the key exchange (the server proved it holds the private half).
func HandshakeHostKey(ctx context.Context, addr string, timeout time.Duration) (ssh.PublicKey, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var got ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "root",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return errGotHostKey
		},
		// Pin the algorithm: the builder's pinned key is ed25519, and a
		// server that also has an RSA or ECDSA key must show the ed25519 one.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           timeout,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err == nil {
		// Cannot happen (the callback always refuses), but do not leak it.
		go ssh.DiscardRequests(reqs)
		go func() {
			for ch := range chans {
				_ = ch.Reject(ssh.Prohibited, "")
			}
		}()
		c.Close()
	}
	if got != nil {
		return got, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("ssh handshake with %s: %w (%v)", addr, ctx.Err(), err)
	}
	return nil, fmt.Errorf("ssh handshake with %s: no ed25519 host key presented: %w", addr, err)
}

// VerifyHostKey runs HandshakeHostKey against addr and CrossCheck against
// pinned. The error is a *HostKeyMismatchError when the server shows another
// key.
func VerifyHostKey(ctx context.Context, addr string, pinned ssh.PublicKey, timeout time.Duration) error {
	presented, err := HandshakeHostKey(ctx, addr, timeout)
	if err != nil {
		return err
	}
	if err := CrossCheck(pinned, presented); err != nil {
		var m *HostKeyMismatchError
		if errors.As(err, &m) {
			m.Addr = addr
		}
		return err
	}
	return nil
}

// EncodeMachinesHostKey renders field 8 of an /etc/nix/machines line: the
// base64 of the whole "ssh-ed25519 AAAA…" line (no comment, no newline). Nix
// decodes it and writes "<host> <decoded>" into a temporary known_hosts.
func EncodeMachinesHostKey(key ssh.PublicKey) string {
	line := bytes.TrimRight(ssh.MarshalAuthorizedKey(key), "\n")
	return base64.StdEncoding.EncodeToString(line)
}

// DecodeMachinesHostKey parses field 8 of a machines line back into a key.
// It accepts what other tools write there too (a .pub line with a comment
// and a final newline, as nix-darwin does).
func DecodeMachinesHostKey(field string) (ssh.PublicKey, error) {
	if field == "" || field == "-" {
		return nil, errors.New("machines field 8 holds no host key")
	}
	line, err := base64.StdEncoding.DecodeString(field)
	if err != nil {
		return nil, fmt.Errorf("machines field 8 is not base64: %w", err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, fmt.Errorf("machines field 8 does not decode to a host key line: %w", err)
	}
	return k, nil
}

func abbreviate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
