package sshkeys

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestMachinesHostKeyField(t *testing.T) {
	k, _ := testKey(t, 3)
	line := strings.TrimSpace(string(PublicLine(k, "")))
	field := EncodeMachinesHostKey(k)
	if dec, _ := base64.StdEncoding.DecodeString(field); string(dec) != line {
		t.Errorf("field 8 decodes to %q, want %q", dec, line)
	}
	back, err := DecodeMachinesHostKey(field)
	if err != nil || !keysEqual(back, k) {
		t.Errorf("round trip: %v", err)
	}
	// nix-darwin writes the whole .pub file, comment and newline included.
	darwin := base64.StdEncoding.EncodeToString(PublicLine(k, "root@nixos"))
	if back, err := DecodeMachinesHostKey(darwin); err != nil || !keysEqual(back, k) {
		t.Errorf("nix-darwin style field: %v", err)
	}
	for _, bad := range []string{"", "-", "!!", base64.StdEncoding.EncodeToString([]byte("hello"))} {
		if _, err := DecodeMachinesHostKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseHostKeyAndCrossCheck(t *testing.T) {
	a, _ := testKey(t, 1)
	b, _ := testKey(t, 2)
	pa, err := ParseHostKey(PublicLine(a, "root@builder"))
	if err != nil || CrossCheck(pa, a) != nil {
		t.Fatalf("same key: %v / %v", err, CrossCheck(pa, a))
	}
	if _, err := ParseHostKey([]byte("garbage\n")); err == nil {
		t.Error("garbage host key accepted")
	}
	err = CrossCheck(a, b)
	var m *HostKeyMismatchError
	if !errors.As(err, &m) {
		t.Fatalf("want *HostKeyMismatchError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{Fingerprint(a), Fingerprint(b), "possible impersonation; not accepted"} {
		if !strings.Contains(msg, want) {
			t.Errorf("mismatch message %q lacks %q", msg, want)
		}
	}
}
