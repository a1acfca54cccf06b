package steps

import (
	"bytes"
	"strings"
	"testing"
)

// Our block at the top of a user's ssh config comes off again without a
// trace, and the user's top-level lines keep applying to every host.
func TestHomeBlockIsReversible(t *testing.T) {
	m := newMachine(t, "linux")
	for name, orig := range map[string]string{
		"empty":            "",
		"top-level lines":  "User fallback\nPort 2200\n",
		"host star":        "Host *\n  Port 2200\n  User fallback\n",
		"no final newline": "Host *\n  Port 2200",
		"crlf":             "Host *\r\n  Port 2200\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			with, err := m.env.withHomeBlock([]byte(orig))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(with), "# BEGIN nixbuilder-setup nixbuilder\n") ||
				!strings.Contains(string(with), "Host nixbuilder\n  HostName 127.0.0.1\n") ||
				!strings.Contains(string(with), "Match all\n# END nixbuilder-setup nixbuilder\n"+orig) {
				t.Errorf("block not at the top, or the original not after it:\n%s", with)
			}
			again, err := m.env.withHomeBlock(with)
			if err != nil || !bytes.Equal(again, with) {
				t.Errorf("not idempotent:\n%s", again)
			}
			back, err := m.env.removeBlock(with)
			if err != nil || string(back) != orig {
				t.Errorf("removing the block gave %q, want %q (err %v)", back, orig, err)
			}
		})
	}
}
