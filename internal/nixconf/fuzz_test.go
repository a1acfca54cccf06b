package nixconf

import (
	"bytes"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, dir := range []string{"nixconf", "machines", "invalid"} {
		for _, data := range corpus(f, dir) {
			f.Add(data)
		}
	}
	for _, s := range []string{"", "\n", "\r", "\r\n", "x", "a = b\r", "# BEGIN nixbuilder-setup nb\n", "a = 1\n# BEGIN nixbuilder-setup nb\nb\n# END nixbuilder-setup nb"} {
		f.Add([]byte(s))
	}
}

func FuzzParseBytes(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if got := c.Bytes(); !bytes.Equal(got, data) {
			t.Fatalf("Parse→Bytes changed %q into %q", data, got)
		}
		_, _ = c.Get("builders")
		_ = c.Includes()
		_, _ = ParseMachines(data)
	})
}

func FuzzManagedBlock(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, body := range [][]byte{testBody, nil, []byte("ssh://a x86_64-linux")} {
			_, had, err := ManagedBlock(data, "nb")
			up, uerr := UpsertManagedBlock(data, "nb", body)
			if (err == nil) != (uerr == nil) {
				t.Fatalf("ManagedBlock error %v but Upsert error %v", err, uerr)
			}
			if uerr != nil {
				if _, rerr := RemoveManagedBlock(data, "nb"); rerr == nil {
					t.Fatalf("Upsert refused %q (%v) but Remove accepted it", data, uerr)
				}
				return
			}
			up2, err := UpsertManagedBlock(up, "nb", body)
			if err != nil || !bytes.Equal(up, up2) {
				t.Fatalf("Upsert not idempotent on %q (err %v):\n once %q\ntwice %q", data, err, up, up2)
			}
			if !had {
				back, err := RemoveManagedBlock(up, "nb")
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("Remove(Upsert(%q)) = %q, %v", data, back, err)
				}
			}
			if _, err := Parse(data); err == nil {
				if _, err := Parse(up); err != nil && bytes.Equal(body, testBody) {
					t.Fatalf("Upsert made a valid nix.conf %q invalid: %q: %v", data, up, err)
				}
			}
		}
	})
}
