package nixconf

import (
	"bytes"
	"strings"
	"testing"
)

var testBody = []byte("builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n")

func TestUpsertRemoveCorpus(t *testing.T) {
	files := corpus(t, "nixconf")
	for name, data := range corpus(t, "machines") {
		files[name] = data
	}
	for name, data := range files {
		for _, block := range []string{"nixbuilder", "second"} {
			_, had, err := ManagedBlock(data, block)
			if err != nil {
				t.Fatalf("%s: ManagedBlock: %v", name, err)
			}
			up, err := UpsertManagedBlock(data, block, testBody)
			if err != nil {
				t.Fatalf("%s: Upsert: %v", name, err)
			}
			up2, err := UpsertManagedBlock(up, block, testBody)
			if err != nil || !bytes.Equal(up, up2) {
				t.Errorf("%s: Upsert is not idempotent (err %v):\n once %q\ntwice %q", name, err, up, up2)
			}
			body, found, err := ManagedBlock(up, block)
			if err != nil || !found || !bytes.Equal(body, testBody) {
				t.Errorf("%s: ManagedBlock after Upsert = %q, %v, %v", name, body, found, err)
			}
			if strings.HasSuffix(name, ".conf") {
				if _, err := Parse(up); err != nil {
					t.Errorf("%s: the upserted file does not parse: %v", name, err)
				}
			} else if _, err := ParseMachines(up); err != nil {
				t.Errorf("%s: the upserted file does not parse: %v", name, err)
			}
			back, err := RemoveManagedBlock(up, block)
			if err != nil {
				t.Fatalf("%s: Remove: %v", name, err)
			}
			if !had && !bytes.Equal(back, data) {
				t.Errorf("%s: Remove(Upsert(x)) != x:\n got %q\nwant %q", name, back, data)
			}
			if had {
				// An up-to-date block is left as it is, byte for byte.
				if b0, _, _ := ManagedBlock(data, block); bytes.Equal(b0, testBody) && !bytes.Equal(up, data) {
					t.Errorf("%s: Upsert of the same body changed the file:\n got %q\nwant %q", name, up, data)
				}
			}
		}
	}
}

func TestUpsertExamples(t *testing.T) {
	body := []byte("a = 1\n")
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "# BEGIN nixbuilder-setup nb\na = 1\n# END nixbuilder-setup nb\n"},
		{"append", "x = 1\n", "x = 1\n# BEGIN nixbuilder-setup nb\na = 1\n# END nixbuilder-setup nb\n"},
		{"no final newline", "x = 1", "x = 1\n# BEGIN nixbuilder-setup nb\na = 1\n# END nixbuilder-setup nb"},
		{"crlf", "x = 1\r\n", "x = 1\r\n# BEGIN nixbuilder-setup nb\r\na = 1\r\n# END nixbuilder-setup nb\r\n"},
		{"crlf no final newline", "x = 1\r\ny = 2", "x = 1\r\ny = 2\r\n# BEGIN nixbuilder-setup nb\r\na = 1\r\n# END nixbuilder-setup nb"},
		{"replace in place", "x = 1\n# BEGIN nixbuilder-setup nb\nold = 2\n# END nixbuilder-setup nb\ny = 3\n",
			"x = 1\n# BEGIN nixbuilder-setup nb\na = 1\n# END nixbuilder-setup nb\ny = 3\n"},
		{"other block kept", "# BEGIN nixbuilder-setup other\nb = 2\n# END nixbuilder-setup other\n",
			"# BEGIN nixbuilder-setup other\nb = 2\n# END nixbuilder-setup other\n# BEGIN nixbuilder-setup nb\na = 1\n# END nixbuilder-setup nb\n"},
	}
	for _, tt := range tests {
		got, err := UpsertManagedBlock([]byte(tt.in), "nb", body)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		back, err := RemoveManagedBlock(got, "nb")
		if err != nil {
			t.Errorf("%s: Remove: %v", tt.name, err)
		}
		if !strings.Contains(tt.in, "nixbuilder-setup nb") && string(back) != tt.in {
			t.Errorf("%s: Remove gave %q, want %q", tt.name, back, tt.in)
		}
	}
}

func TestSeveralBlocks(t *testing.T) {
	x := []byte("keep = me\n")
	a, _ := UpsertManagedBlock(x, "a", []byte("ssh://a x86_64-linux\n"))
	ab, _ := UpsertManagedBlock(a, "b", []byte("ssh://b x86_64-linux\n"))
	ab2, err := UpsertManagedBlock(ab, "a", []byte("ssh://a2 x86_64-linux\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "keep = me\n# BEGIN nixbuilder-setup a\nssh://a2 x86_64-linux\n# END nixbuilder-setup a\n# BEGIN nixbuilder-setup b\nssh://b x86_64-linux\n# END nixbuilder-setup b\n"
	if string(ab2) != want {
		t.Fatalf("got %q\nwant %q", ab2, want)
	}
	onlyB, _ := RemoveManagedBlock(ab2, "a")
	none, _ := RemoveManagedBlock(onlyB, "b")
	if string(none) != string(x) {
		t.Fatalf("removing both blocks gave %q, want %q", none, x)
	}
}

func TestBlockErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unterminated", string(readTestdata(t, "invalid", "unterminated-block.conf")), "line 2:"},
		{"duplicated", string(readTestdata(t, "invalid", "duplicated-block.conf")), "line 3:"},
		{"stray end", "a = 1\n# END nixbuilder-setup nb\n", "line 2:"},
		{"nested", "# BEGIN nixbuilder-setup x\n# BEGIN nixbuilder-setup nb\n# END nixbuilder-setup nb\n# END nixbuilder-setup x\n", "line 2:"},
		{"mismatched end", "# BEGIN nixbuilder-setup x\n# END nixbuilder-setup nb\n", "line 2:"},
	}
	for _, tt := range tests {
		_, err1 := UpsertManagedBlock([]byte(tt.in), "nb", testBody)
		_, err2 := RemoveManagedBlock([]byte(tt.in), "nb")
		_, _, err3 := ManagedBlock([]byte(tt.in), "nb")
		for i, err := range []error{err1, err2, err3} {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: call %d error = %v, want one naming %q", tt.name, i, err, tt.want)
			}
		}
	}
	if _, err := UpsertManagedBlock(nil, "nb", []byte("# END nixbuilder-setup nb\n")); err == nil {
		t.Error("a body holding a marker line was accepted")
	}
	for _, bad := range []string{"", "a b", "a\nb", "a#"} {
		if _, err := UpsertManagedBlock(nil, bad, nil); err == nil {
			t.Errorf("block name %q was accepted", bad)
		}
	}
}

func TestRemoveAbsent(t *testing.T) {
	in := []byte("x = 1")
	out, err := RemoveManagedBlock(in, "nb")
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Remove without a block = %q, %v", out, err)
	}
}
