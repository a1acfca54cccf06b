package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Facts is what the machines line needs to know about the builder.
type Facts struct {
	CPUs int
	// System is the builder's native Nix system, e.g. "aarch64-linux".
	System string
	// Emulated lists the other systems the builder really runs: a binfmt
	// handler for them is registered and a probe binary ran.
	Emulated []string
	// Handlers are the enabled binfmt_misc handlers seen in the container.
	Handlers []string
	// KVM is true when /dev/kvm exists in the container.
	KVM bool
}

// Systems is System followed by Emulated.
func (f Facts) Systems() []string { return append([]string{f.System}, f.Emulated...) }

// nixSystem maps `uname -m` to a Nix system.
func nixSystem(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "x86_64-linux"
	case "aarch64", "arm64":
		return "aarch64-linux"
	}
	return machine + "-linux"
}

// emulationCandidates are the systems worth probing on a native system.
var emulationCandidates = map[string][]string{
	"aarch64-linux": {"x86_64-linux"},
	"x86_64-linux":  {"aarch64-linux"},
}

// BuilderFacts probes the running builder container through Exec.
func BuilderFacts(ctx context.Context, c Client, name string) (Facts, error) {
	var f Facts
	run := func(argv ...string) (string, error) {
		res, err := c.Exec(ctx, name, argv)
		if err != nil {
			return "", err
		}
		if res.ExitCode != 0 {
			return "", fmt.Errorf("%s in container %s exited %d: %s", strings.Join(argv, " "), name, res.ExitCode, bytes.TrimSpace(res.Stderr))
		}
		return strings.TrimSpace(string(res.Stdout)), nil
	}
	// The four questions are independent: ask them at once, since each
	// exec is a round trip through the engine.
	var (
		wg                sync.WaitGroup
		arch, cpus        string
		archErr, cpusErr  error
		kvm, binfmt       ExecResult
		kvmErr, binfmtErr error
	)
	wg.Add(4)
	go func() { defer wg.Done(); arch, archErr = run("uname", "-m") }()
	go func() { defer wg.Done(); cpus, cpusErr = run("nproc") }()
	go func() { defer wg.Done(); kvm, kvmErr = c.Exec(ctx, name, []string{"test", "-e", "/dev/kvm"}) }()
	// The handlers are listed even when the directory is not mounted in
	// the container; then none are found and no emulation is claimed.
	go func() {
		defer wg.Done()
		binfmt, binfmtErr = c.Exec(ctx, name, []string{"ls", "/proc/sys/fs/binfmt_misc"})
	}()
	wg.Wait()
	if err := errors.Join(archErr, cpusErr, kvmErr, binfmtErr); err != nil {
		return f, err
	}
	f.System = nixSystem(arch)
	var err error
	if f.CPUs, err = strconv.Atoi(cpus); err != nil {
		return f, fmt.Errorf("nproc in container %s printed %q", name, cpus)
	}
	f.KVM = kvm.ExitCode == 0
	res := binfmt

	for _, h := range strings.Fields(string(res.Stdout)) {
		if h == "status" || h == "register" {
			continue
		}
		r, err := c.Exec(ctx, name, []string{"cat", "/proc/sys/fs/binfmt_misc/" + h})
		if err == nil && r.ExitCode == 0 && strings.HasPrefix(string(r.Stdout), "enabled") {
			f.Handlers = append(f.Handlers, h)
		}
	}
	for _, sys := range emulationCandidates[f.System] {
		if len(f.Handlers) == 0 {
			break
		}
		ok, err := probeRuns(ctx, c, name, sys)
		if err != nil {
			return f, err
		}
		if ok {
			f.Emulated = append(f.Emulated, sys)
		}
	}
	return f, nil
}

// probeRuns copies a minimal static binary for sys into the container and
// runs it: only an exit status of 0 proves the system is runnable.
func probeRuns(ctx context.Context, c Client, name, sys string) (bool, error) {
	bin := ProbeBinary(sys)
	if bin == nil {
		return false, nil
	}
	p := "/tmp/nixbuilder-probe-" + sys
	if err := c.WriteFile(ctx, name, p, bin, 0o755); err != nil {
		return false, err
	}
	res, err := c.Exec(ctx, name, []string{p})
	if err != nil {
		return false, err
	}
	_, _ = c.Exec(ctx, name, []string{"rm", "-f", p})
	return res.ExitCode == 0, nil
}

// ProbeBinary returns a minimal static ELF executable for sys that only
// calls exit(0), or nil for a system it does not know. It needs no libc,
// so a registered binfmt handler is all it takes to run it.
func ProbeBinary(sys string) []byte {
	var machine uint16
	var code []byte
	switch sys {
	case "x86_64-linux":
		machine = 62 // EM_X86_64
		code = []byte{
			0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
			0x31, 0xff, // xor edi, edi
			0x0f, 0x05, // syscall
		}
	case "aarch64-linux":
		machine = 183 // EM_AARCH64
		code = []byte{
			0x00, 0x00, 0x80, 0xd2, // mov x0, #0
			0xa8, 0x0b, 0x80, 0xd2, // mov x8, #93 (exit)
			0x01, 0x00, 0x00, 0xd4, // svc #0
		}
	default:
		return nil
	}
	const base = 0x400000
	const ehsize, phsize = 64, 56
	size := uint64(ehsize + phsize + len(code))
	var b bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&b, le, v) }
	// ELF header
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */, 0 /* SysV */})
	b.Write(make([]byte, 8))
	w(uint16(2)) // ET_EXEC
	w(machine)
	w(uint32(1))                      // version
	w(uint64(base + ehsize + phsize)) // entry
	w(uint64(ehsize))                 // phoff
	w(uint64(0))                      // shoff
	w(uint32(0))                      // flags
	w(uint16(ehsize))
	w(uint16(phsize))
	w(uint16(1)) // phnum
	w(uint16(0)) // shentsize
	w(uint16(0)) // shnum
	w(uint16(0)) // shstrndx
	// program header: one loadable, executable segment holding the file
	w(uint32(1)) // PT_LOAD
	w(uint32(5)) // PF_R|PF_X
	w(uint64(0)) // offset
	w(uint64(base))
	w(uint64(base))
	w(size) // filesz
	w(size) // memsz
	w(uint64(0x1000))
	b.Write(code)
	return b.Bytes()
}
