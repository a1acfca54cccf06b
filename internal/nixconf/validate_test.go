package nixconf

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ourMachine is the machines line the tool writes, per the design.
var ourMachine = Machine{
	URI: "ssh-ng://root@nixbuilder", Systems: []string{"x86_64-linux", "aarch64-linux"},
	SSHKey: "/etc/nix/nixbuilder_ed25519", MaxJobs: 8, SpeedFactor: 1,
	SupportedFeatures: []string{"big-parallel", "benchmark"}, PublicHostKey: testHostKey,
}

// TestValidateOurNixConf: for installer-written and hand-edited files, the
// nix.conf we generate is accepted by the real nix and the effective
// builders and builders-use-substitutes are what we meant.
func TestValidateOurNixConf(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	ctx := testContext(t)
	tests := []struct {
		file, wantBuilders string
	}{
		{"installer-multi-user.conf", "@/etc/nix/machines"},
		{"hand-crlf-no-final-newline.conf", "@/etc/nix/machines"},
		{"hand-tabs.conf", "@/etc/nix/machines"},
		{"builders-inline.conf", "ssh://mac-mini aarch64-darwin ; ssh://linux-box x86_64-linux /root/.ssh/id_ed25519 4 2 big-parallel ; @/etc/nix/machines"},
		{"builders-empty.conf", "@/etc/nix/machines"},
		{"empty.conf", "@/etc/nix/machines"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			old := readTestdata(t, "nixconf", tt.file)
			c, err := Parse(old)
			if err != nil {
				t.Fatal(err)
			}
			current, _ := c.Get("builders")
			body, elsewhere, err := NixConfBody(current, "/etc/nix/machines")
			if err != nil || elsewhere != "" {
				t.Fatalf("NixConfBody: %v %q", err, elsewhere)
			}
			candidate, err := UpsertManagedBlock(old, "nixbuilder", body)
			if err != nil {
				t.Fatal(err)
			}
			eff, err := Validate(ctx, nix, map[string][]byte{"nix.conf": candidate})
			if err != nil {
				t.Fatalf("real nix refused our nix.conf:\n%s\nerror: %v", candidate, err)
			}
			if got := eff.Settings["builders"]; got != tt.wantBuilders {
				t.Errorf("effective builders = %q, want %q", got, tt.wantBuilders)
			}
			if got := eff.Settings["builders-use-substitutes"]; got != "true" {
				t.Errorf("effective builders-use-substitutes = %q, want true", got)
			}
			if len(eff.Warnings) != 0 {
				t.Errorf("nix warned: %q", eff.Warnings)
			}
		})
	}
}

// TestValidateDeterminate: our block in nix.custom.conf, included by
// Determinate's nix.conf, is what nix uses.
func TestValidateDeterminate(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	custom, err := UpsertManagedBlock(readTestdata(t, "nixconf", "determinate-custom-user.conf"), "nixbuilder",
		[]byte("builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	conf := []byte("# DETERMINATE NIX CONFIG\n!include nix.custom.conf\nbuild-users-group = nixbld\n")
	eff, err := Validate(testContext(t), nix, map[string][]byte{"nix.conf": conf, "nix.custom.conf": custom})
	if err != nil {
		t.Fatal(err)
	}
	if eff.Settings["builders"] != "@/etc/nix/machines" || eff.Settings["builders-use-substitutes"] != "true" {
		t.Errorf("effective builders %q, builders-use-substitutes %q", eff.Settings["builders"], eff.Settings["builders-use-substitutes"])
	}
	if !strings.Contains(eff.Settings["trusted-users"], "@admin") {
		t.Errorf("the user's trusted-users from nix.custom.conf were lost: %q", eff.Settings["trusted-users"])
	}
}

// TestValidateCorpus: every corpus nix.conf that does not include a file
// from outside is accepted by the real nix, so the corpus is realistic.
func TestValidateCorpus(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	ctx := testContext(t)
	for name, data := range corpus(t, "nixconf") {
		if name == "includes.conf" { // includes /etc/nix/common.conf, not ours to provide
			continue
		}
		if _, err := Validate(ctx, nix, map[string][]byte{"nix.conf": data}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	ctx := testContext(t)
	_, err := Validate(ctx, nix, map[string][]byte{"nix.conf": readTestdata(t, "invalid", "no-spaces-equals.conf")})
	var ne *NixError
	if !errors.As(err, &ne) {
		t.Fatalf("broken nix.conf: error %v, want a *NixError", err)
	}
	// Nix 2.8 says "illegal configuration line", newer Nix "syntax error in
	// configuration line"; both quote the line.
	if !strings.Contains(err.Error(), "configuration line 'builders=@/etc/nix/machines'") {
		t.Errorf("error does not carry nix's message: %v", err)
	}
	_, err = Validate(ctx, nix, map[string][]byte{"nix.conf": []byte("include missing.conf\n")})
	if err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing include: error %v", err)
	}
	eff, err := Validate(ctx, nix, map[string][]byte{"nix.conf": []byte("extra-builders = ssh://x\nbuilders-use-substitues = true\n")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"warning: unknown setting 'builders-use-substitues'", "warning: unknown setting 'extra-builders'"}
	got := append([]string{}, eff.Warnings...)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", eff.Warnings, want)
	}
	if _, err := Validate(ctx, nix, map[string][]byte{"nix.conf": nil, "../x": nil}); err == nil {
		t.Error("a file name with a path was accepted")
	}
}

// TestValidateIgnoresUserConfig: the user's own nix.conf and NIX_CONFIG do
// not leak into the validation.
func TestValidateIgnoresUserConfig(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "nix"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "nix", "nix.conf"), []byte("builders = ssh://from-user-conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("NIX_CONFIG", "max-jobs = 77")
	eff, err := Validate(testContext(t), nix, map[string][]byte{"nix.conf": []byte("builders = @/etc/nix/machines\n")})
	if err != nil {
		t.Fatal(err)
	}
	if eff.Settings["builders"] != "@/etc/nix/machines" || eff.Settings["max-jobs"] == "77" {
		t.Errorf("user configuration leaked: builders %q, max-jobs %q", eff.Settings["builders"], eff.Settings["max-jobs"])
	}
}

func TestValidateMachines(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	ctx := testContext(t)
	ours, err := UpsertManagedBlock(readTestdata(t, "machines", "multiple.machines"), "nixbuilder", []byte(ourMachine.String()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	listing, err := ValidateMachines(ctx, nix, ours)
	if err != nil {
		t.Fatalf("real nix refused our machines file:\n%s\nerror: %v", ours, err)
	}
	// Nix lists what it read; our builder is among them with our jobs and
	// features.
	if !strings.Contains(listing, "4 available machines") || !strings.Contains(listing, "(x86_64-linux, aarch64-linux, 8, benchmark, big-parallel, )") {
		t.Errorf("nix read the machines as:\n%s", listing)
	}
	_, err = ValidateMachines(ctx, nix, readTestdata(t, "invalid", "bad-maxjobs.machines"))
	if err == nil || !strings.Contains(err.Error(), "bad machine specification") {
		t.Errorf("broken machines file: error %v, want nix's \"bad machine specification\"", err)
	}
	// Not comments-blank.machines: Nix 2.8 refuses its white-space-only
	// line ("store URL was not found at the first column"), newer Nix
	// trims it.
	for _, name := range []string{"single.machines", "placeholders.machines", "tabs-crlf.machines", "semicolons.machines", "with-our-block.machines", "empty.machines"} {
		if _, err := ValidateMachines(ctx, nix, readTestdata(t, "machines", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNixDarwinSnippetEvaluates: the snippet is Nix code that evaluates to
// the builder we meant.
func TestNixDarwinSnippetEvaluates(t *testing.T) {
	nix := testenv.LookPath(t, "nix")
	snippet, err := NixDarwinSnippet(ourMachine)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "module.nix")
	if err := os.WriteFile(file, []byte("{ ... }: {\n"+snippet+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testContext(t), nix, "--extra-experimental-features", "nix-command",
		"eval", "--json", "--store", filepath.Join(dir, "store"), "--file", file, "--apply", "f: (f {}).nix")
	cmd.Env = nixEnv(dir, dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix eval: %v\n%s", err, err.(*exec.ExitError).Stderr)
	}
	var got struct {
		DistributedBuilds bool `json:"distributedBuilds"`
		BuildMachines     []struct {
			HostName, SSHUser, Protocol, SSHKey, PublicHostKey string
			Systems, SupportedFeatures                         []string
			MaxJobs, SpeedFactor                               int
		} `json:"buildMachines"`
		Settings map[string]any `json:"settings"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !got.DistributedBuilds || len(got.BuildMachines) != 1 || got.Settings["builders-use-substitutes"] != true {
		t.Fatalf("snippet evaluates to %s", out)
	}
	b := got.BuildMachines[0]
	if b.HostName != "nixbuilder" || b.SSHUser != "root" || b.Protocol != "ssh-ng" || b.SSHKey != ourMachine.SSHKey ||
		b.PublicHostKey != ourMachine.PublicHostKey || !reflect.DeepEqual(b.Systems, ourMachine.Systems) ||
		!reflect.DeepEqual(b.SupportedFeatures, ourMachine.SupportedFeatures) || b.MaxJobs != 8 || b.SpeedFactor != 1 {
		t.Errorf("snippet evaluates to %s", out)
	}
}
