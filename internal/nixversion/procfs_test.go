package nixversion

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nixbuilder/nixbuilder-setup/internal/testenv"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		file string
		want ProcStat
	}{
		{"stat-nix-daemon.txt", ProcStat{PID: 812, Comm: "nix-daemon", PPID: 1, StartTicks: 2215}},
		{"stat-odd-comm.txt", ProcStat{PID: 4242, Comm: "a) b (c)", PPID: 812, StartTicks: 123456}},
	}
	for _, tt := range tests {
		got, err := ParseProcStat(readFixture(t, filepath.Join("proc", tt.file)))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.file, got, tt.want)
		}
	}
	for _, bad := range []string{"", "812 nix-daemon S 1", "812 (nix-daemon) S 1 2 3", "x (nix-daemon) S 1 812 812 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 2215 1"} {
		if got, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestParseBtime(t *testing.T) {
	got, err := ParseBtime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	if err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("ParseBtime = %v, %v", got, err)
	}
	if _, err := ParseBtime([]byte("cpu 1\n")); err == nil {
		t.Error("ParseBtime without btime: want an error")
	}
}

// fakeProc builds a proc tree: pid -> (comm, ppid, start ticks).
func fakeProc(t *testing.T, btime int64, procs map[int][3]string) ProcFS {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu 1 2\nbtime "+strconv.FormatInt(btime, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(pid) + " (" + p[0] + ") S " + p[1] + " 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + p[2] + " 100 10 0 0 0 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(p[0]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Non-pid entries are ignored.
	if err := os.MkdirAll(filepath.Join(root, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	return ProcFS{Root: root}
}

func TestFindDaemon(t *testing.T) {
	p := fakeProc(t, 1700000000, map[int][3]string{
		1:    {"systemd", "0", "1"},
		812:  {"nix-daemon", "1", "2215"},
		900:  {"sshd", "1", "3000"},
		4242: {"nix-daemon", "812", "900000"}, // a per-connection child
		4300: {"nix", "900", "910000"},
	})
	pids, err := p.FindByComm(DaemonComm)
	if err != nil || len(pids) != 2 || pids[0] != 812 || pids[1] != 4242 {
		t.Fatalf("FindByComm = %v, %v", pids, err)
	}
	pid, err := p.FindDaemon()
	if err != nil || pid != 812 {
		t.Fatalf("FindDaemon = %d, %v; want 812", pid, err)
	}
	start, err := p.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Unix(1700000000, 0).Add(22150 * time.Millisecond)
	if !start.Equal(want) {
		t.Errorf("StartTime = %v, want %v", start, want)
	}

	none := fakeProc(t, 1700000000, map[int][3]string{1: {"systemd", "0", "1"}})
	if _, err := none.FindDaemon(); err != ErrNoDaemon {
		t.Errorf("FindDaemon without a daemon: %v, want ErrNoDaemon", err)
	}
}

// TestRealProcStartTime reads this test process's own start time from the
// machine's /proc: it must lie shortly before now.
func TestRealProcStartTime(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		testenv.Missing(t, "no /proc on this system")
	}
	now := time.Now()
	for _, p := range []ProcFS{LinuxProc(), {Root: "/proc"}} {
		start, err := p.StartTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		// btime is whole seconds, so the fallback may be up to 1s early.
		if start.After(now) || now.Sub(start) > 10*time.Minute {
			t.Errorf("start time of this process = %v, now %v", start, now)
		}
	}
	precise, err := LinuxProc().BootTime()
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := ProcFS{Root: "/proc"}.BootTime()
	if err != nil {
		t.Fatal(err)
	}
	if d := precise.Sub(coarse); d < -time.Second || d > 2*time.Second {
		t.Errorf("CLOCK_BOOTTIME boot %v and btime %v differ by %v", precise, coarse, d)
	}
	st, err := LinuxProc().Stat(os.Getpid())
	if err != nil || st.PID != os.Getpid() || st.PPID != os.Getppid() {
		t.Errorf("Stat(self) = %+v, %v; want pid %d ppid %d", st, err, os.Getpid(), os.Getppid())
	}
}
