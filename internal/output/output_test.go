package output

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbuilder/nixbuilder-setup/internal/plan"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// scripted runs the engine over steps made to produce a representative
// event sequence: ok, a change applied with its diff, a log line, a
// blocked step with a hint, and a skipped one.
func scripted(fe plan.Frontend, mode plan.Mode) plan.Summary {
	applied := false
	steps := []plan.Step{
		{ID: "host", Title: "Host", Check: func(context.Context) plan.Result { return plan.Okf("macOS 15.1 on Apple Silicon") }},
		{ID: "rosetta", Title: "Rosetta", Check: func(context.Context) plan.Result { return plan.Skip("not needed on Intel") }},
		{ID: "machines", Title: "Machines file", Check: func(ctx context.Context) plan.Result {
			if applied {
				return plan.Okf("line for nixbuilder in /etc/nix/machines")
			}
			return plan.Need("no line for nixbuilder in /etc/nix/machines",
				plan.FileChange("/etc/nix/machines", []byte("# mine\n"), []byte("# mine\n# BEGIN nixbuilder-setup nixbuilder\nssh-ng://root@nixbuilder x86_64-linux\n# END nixbuilder-setup nixbuilder\n"), true, true))
		}, Apply: func(ctx context.Context) error {
			plan.Log(ctx, "writing /etc/nix/machines")
			applied = true
			return nil
		}},
		{ID: "daemon", Title: "Nix daemon", Needs: []string{"machines"}, Check: func(context.Context) plan.Result {
			return plan.Block("the daemon is managed by nix-darwin", "add the snippet to your configuration and run darwin-rebuild switch")
		}},
	}
	return plan.Run(context.Background(), steps, fe, plan.Options{Mode: mode, AssumeYes: true})
}

func TestPlainGolden(t *testing.T) {
	for _, mode := range []plan.Mode{plan.Setup, plan.Doctor, plan.Plan} {
		t.Run(string(mode), func(t *testing.T) {
			var out bytes.Buffer
			scripted(&Plain{Out: &out}, mode)
			if strings.Contains(out.String(), "\x1b[") {
				t.Error("ANSI escapes without color")
			}
			golden(t, "plain-"+string(mode), out.Bytes())
		})
	}
}

func TestPlainColor(t *testing.T) {
	var out bytes.Buffer
	scripted(&Plain{Out: &out, Color: true}, plan.Doctor)
	if !strings.Contains(out.String(), "\x1b[") {
		t.Error("no ANSI escapes with color on")
	}
}

func TestJSONGoldenAndParses(t *testing.T) {
	var out, errOut bytes.Buffer
	sum := scripted(&JSON{Out: &out, Err: &errOut}, plan.Setup)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	var last plan.Event
	for i, l := range lines {
		var ev plan.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, l)
		}
		if ev.Type == plan.EventLog {
			t.Errorf("log event on stdout: %s", l)
		}
		last = ev
	}
	if last.Type != plan.EventResult || last.Exit == nil || *last.Exit != sum.Exit {
		t.Errorf("last line %+v, want the result with exit %d", last, sum.Exit)
	}
	if !strings.Contains(errOut.String(), `"type":"log"`) {
		t.Errorf("log events not on stderr: %q", errOut.String())
	}
	golden(t, "json-setup", out.Bytes())
}

func TestPlainConfirm(t *testing.T) {
	var out bytes.Buffer
	p := &Plain{Out: &out, In: strings.NewReader("maybe\na\n"), Interactive: true}
	d, err := p.Confirm(context.Background(), plan.StepInfo{ID: "key", Title: "Key"}, []plan.Change{{Kind: plan.ChangeFile, Summary: "create /etc/nix/k"}})
	if err != nil || d != plan.YesAll {
		t.Fatalf("decision %v err %v", d, err)
	}
	if c := strings.Count(out.String(), "Apply key?"); c != 2 {
		t.Errorf("asked %d times, want 2 (after a bad answer):\n%s", c, out.String())
	}
	p = &Plain{Out: &out, In: strings.NewReader("")}
	if _, err := p.Confirm(context.Background(), plan.StepInfo{ID: "key"}, nil); err != plan.ErrNoConsent {
		t.Errorf("non-interactive confirm: %v", err)
	}
}
