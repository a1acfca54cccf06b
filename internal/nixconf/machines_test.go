package nixconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const testHostKey = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUoycFBSYzBXZDZkSzVvOHhxZjFIYzZzYkQybFI5djNROUZ6MWIwWXRXMGMgcm9vdEBuaXhidWlsZGVyCg=="

func TestParseMachinesCorpus(t *testing.T) {
	def := func(uri string, systems ...string) Machine {
		return Machine{URI: uri, Systems: systems, MaxJobs: 1, SpeedFactor: 1}
	}
	tests := []struct {
		file string
		want []Machine
	}{
		{"single.machines", []Machine{{
			URI: "ssh-ng://root@nixbuilder", Systems: []string{"x86_64-linux", "aarch64-linux"},
			SSHKey: "/etc/nix/nixbuilder_ed25519", MaxJobs: 8, SpeedFactor: 1,
			SupportedFeatures: []string{"big-parallel", "benchmark"}, PublicHostKey: testHostKey,
		}}},
		{"manual-procedure.machines", []Machine{{
			URI: "ssh-ng://root@localhost:2222", Systems: []string{"x86_64-linux"},
			SSHKey: "/Users/you/.ssh/id_ed25519", MaxJobs: 4, SpeedFactor: 1,
			SupportedFeatures: []string{"kvm", "big-parallel"},
		}}},
		{"placeholders.machines", []Machine{def("ssh://builder"), def("builder2"), def("user@builder3", "x86_64-linux")}},
		{"comments-blank.machines", []Machine{def("ssh://a", "x86_64-linux")}},
		{"tabs-crlf.machines", []Machine{
			{URI: "ssh://a", Systems: []string{"x86_64-linux"}, MaxJobs: 2, SpeedFactor: 1},
			{URI: "ssh://b", Systems: []string{"x86_64-linux"}, MaxJobs: 3, SpeedFactor: 2, SupportedFeatures: []string{"big-parallel"}},
		}},
		{"semicolons.machines", []Machine{
			def("ssh://a", "x86_64-linux"),
			{URI: "ssh://b", Systems: []string{"aarch64-linux"}, MaxJobs: 2, SpeedFactor: 1},
			def("ssh://c", "i686-linux"),
		}},
		{"no-final-newline.machines", []Machine{{URI: "ssh://a", Systems: []string{"x86_64-linux"}, MaxJobs: 2, SpeedFactor: 1}}},
		{"mandatory.machines", []Machine{{
			URI: "ssh://gpu", Systems: []string{"x86_64-linux"}, MaxJobs: 1, SpeedFactor: 1,
			SupportedFeatures: []string{"cuda", "big-parallel"}, MandatoryFeatures: []string{"cuda"},
		}}},
		{"empty.machines", nil},
		{"float-speed.machines", []Machine{{URI: "ssh-ng://fast", Systems: []string{"x86_64-linux"}, MaxJobs: 2, SpeedFactor: 2.5}}},
	}
	for _, tt := range tests {
		got, err := ParseMachines(readTestdata(t, "machines", tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
	// Every corpus file parses, and String gives lines that parse back to
	// the same machines.
	for name, data := range corpus(t, "machines") {
		ms, err := ParseMachines(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var lines []string
		for _, m := range ms {
			lines = append(lines, m.String())
		}
		back, err := ParseMachines([]byte(strings.Join(lines, "\n")))
		if err != nil || !reflect.DeepEqual(back, ms) {
			t.Errorf("%s: String round trip: %v\n got %+v\nwant %+v", name, err, back, ms)
		}
	}
}

func TestParseMachinesErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{string(readTestdata(t, "invalid", "bad-maxjobs.machines")), `line 2: "ssh://b x86_64-linux - x 1": field 4`},
		{string(readTestdata(t, "invalid", "bad-hostkey.machines")), `line 1: "ssh://a x86_64-linux - 1 1 - - !!notbase64": field 8`},
		{"ssh://a x - 1 fast\n", "line 1:"},
		{"\n\n@/etc/nix/other\n", "line 3:"},
		{"- x86_64-linux\n", "line 1:"},
	}
	for _, tt := range tests {
		_, err := ParseMachines([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseMachines(%q) error = %v, want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestMachineString(t *testing.T) {
	tests := []struct {
		m    Machine
		want string
	}{
		{Machine{
			URI: "ssh-ng://root@nixbuilder", Systems: []string{"x86_64-linux", "aarch64-linux"},
			SSHKey: "/etc/nix/nixbuilder_ed25519", MaxJobs: 8, SpeedFactor: 1,
			SupportedFeatures: []string{"big-parallel", "benchmark"}, PublicHostKey: "QUJD",
		}, "ssh-ng://root@nixbuilder x86_64-linux,aarch64-linux /etc/nix/nixbuilder_ed25519 8 1 big-parallel,benchmark - QUJD"},
		{Machine{URI: "ssh://a", MaxJobs: 1, SpeedFactor: 1}, "ssh://a - - 1 1"},
		{Machine{URI: "ssh://a", MaxJobs: 2, SpeedFactor: 2.5, MandatoryFeatures: []string{"cuda"}}, "ssh://a - - 2 2.5 - cuda"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestBuilderEntries(t *testing.T) {
	got := BuilderEntries("ssh://a x ; @/etc/nix/machines;\n ssh://b y # c\n;;")
	want := []string{"ssh://a x", "@/etc/nix/machines", "ssh://b y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BuilderEntries = %q, want %q", got, want)
	}
	if f := BuilderFiles("ssh://a x ; @ /etc/nix/m"); !reflect.DeepEqual(f, []string{"/etc/nix/m"}) {
		t.Errorf("BuilderFiles = %q", f)
	}
}
