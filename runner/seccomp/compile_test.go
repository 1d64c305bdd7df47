package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// vm runs a program in golang.org/x/net/bpf's interpreter, an implementation
// of classic BPF that is not ours.
type vm struct{ *bpf.VM }

func newVM(t testing.TB, prog []unix.SockFilter) vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	v, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("load program in the BPF VM: %v", err)
	}
	return vm{v}
}

// run evaluates the filter on one struct seccomp_data. The VM loads words
// big-endian from its packet; each word is stored so, at the offset the
// program reads it from.
func (v vm) run(t testing.TB, audit, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	pkt := make([]byte, 64)
	binary.BigEndian.PutUint32(pkt[offNr:], nr)
	binary.BigEndian.PutUint32(pkt[offArch:], audit)
	for i, a := range args {
		binary.BigEndian.PutUint32(pkt[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(pkt[offArgs+8*i+4:], uint32(a>>32))
	}
	ret, err := v.Run(pkt)
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return uint32(ret)
}

// expect is the reference semantics of a resolved profile, computed directly.
func expect(r *resolved, goarch string, audit, nr uint32, args [6]uint64) uint32 {
	arch := -1
	for _, a := range filterArches(r, goarch) {
		if archInfos[a].audit == audit {
			arch = a
		}
	}
	if arch < 0 {
		return unix.SECCOMP_RET_KILL_PROCESS
	}
	if arch == archX86_64 && nr&x32Bit != 0 {
		return unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	}
	var maxNr uint32
	for _, rule := range r.rules {
		for _, name := range rule.Names {
			if n, ok := syscallNumber(name, arch); ok {
				maxNr = max(maxNr, n)
			}
		}
	}
	if !allows(r.defaultRet) && maxNr > 0 && nr > maxNr {
		return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	}
	var uncond *uint32
	for _, rule := range r.rules {
		ret, _ := action(rule.Action, rule.ErrnoRet)
		if ret == r.defaultRet {
			continue
		}
		for _, name := range rule.Names {
			if n, ok := syscallNumber(name, arch); !ok || n != nr {
				continue
			}
			switch {
			case len(rule.Args) == 0:
				uncond = &ret
			case sameIndex(rule.Args):
				for _, a := range rule.Args {
					if holds(a, args) {
						return ret
					}
				}
			default:
				all := true
				for _, a := range rule.Args {
					all = all && holds(a, args)
				}
				if all {
					return ret
				}
			}
		}
	}
	if uncond != nil {
		return *uncond
	}
	return r.defaultRet
}

func holds(a specs.LinuxSeccompArg, args [6]uint64) bool {
	v := args[a.Index]
	switch a.Op {
	case specs.OpEqualTo:
		return v == a.Value
	case specs.OpNotEqual:
		return v != a.Value
	case specs.OpLessThan:
		return v < a.Value
	case specs.OpLessEqual:
		return v <= a.Value
	case specs.OpGreaterThan:
		return v > a.Value
	case specs.OpGreaterEqual:
		return v >= a.Value
	case specs.OpMaskedEqual:
		return v&a.Value == a.ValueTwo
	}
	panic("unknown op " + a.Op)
}

// probeValues are argument values around every value the rules compare with.
func probeValues(r *resolved) []uint64 {
	vals := []uint64{0, 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64, 1 << 63}
	for _, rule := range r.rules {
		for _, a := range rule.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo, a.Value | a.ValueTwo, ^a.Value} {
				vals = append(vals, v, v-1, v+1, v|1<<32, v^1<<63)
			}
		}
	}
	slices.Sort(vals)
	return slices.Compact(vals)
}

// checkAgainstReference runs the compiled program of r on every syscall
// number of every architecture (and beyond), with argument values around
// every compared value, and compares with the reference semantics.
func checkAgainstReference(t *testing.T, r *resolved, goarch string) {
	t.Helper()
	prog, err := generate(r, goarch)
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, prog)
	vals := probeValues(r)
	audits := []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_PPC64LE}
	// compared holds the numbers, on any architecture, of syscalls whose
	// rules compare arguments: those are run with every probe value.
	compared := map[uint32]bool{}
	for _, rule := range r.rules {
		for _, name := range rule.Names {
			for arch := range numArches {
				if n, ok := syscallNumber(name, arch); ok && len(rule.Args) > 0 {
					compared[n] = true
				}
			}
		}
	}
	checked := 0
	for _, audit := range audits {
		nrs := []uint32{x32Bit | 39, x32Bit | 165, x32Bit, 0x0f0005, math.MaxUint32}
		for nr := uint32(0); nr < 600; nr++ {
			nrs = append(nrs, nr)
		}
		for _, nr := range nrs {
			argSets := [][6]uint64{{}, {math.MaxUint64, 2, 3, 4, 5, 6}}
			if compared[nr] {
				for i := range 6 {
					for _, val := range vals {
						var args [6]uint64
						args[i] = val
						argSets = append(argSets, args)
					}
				}
			}
			for _, args := range argSets {
				got, want := v.run(t, audit, nr, args), expect(r, goarch, audit, nr, args)
				if got != want {
					t.Fatalf("arch %#x nr %d args %#x: filter returns %#x, profile says %#x", audit, nr, args, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%s: %d instructions, %d cases agree", goarch, len(prog), checked)
}

func resolveDefault(t *testing.T, caps []string, goarch string) *resolved {
	t.Helper()
	r, err := resolve(Default(), target{goarch: goarch, caps: caps, kernel: kernel618})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDefaultProgramMatchesProfile(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm64"} {
		for _, caps := range [][]string{nil, dockerCaps, append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")} {
			checkAgainstReference(t, resolveDefault(t, caps, goarch), goarch)
		}
	}
}

// TestOperators checks every comparison on 64-bit values against Go's.
func TestOperators(t *testing.T) {
	values := []uint64{0, 1, 5, math.MaxUint32, 1 << 32, 1<<32 | 5, 5 << 32, math.MaxUint64, 1 << 63}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	errno := uint(22)
	for _, op := range ops {
		for _, val := range values {
			arg := specs.LinuxSeccompArg{Index: 3, Value: val, ValueTwo: val & (1<<32 | 4), Op: op}
			p := &Profile{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}
			p.Syscalls = append(p.Syscalls, syscallRule([]string{"getcwd"}, specs.ActErrno, &errno, arg))
			r, err := resolve(p, target{goarch: "amd64", kernel: kernel618})
			if err != nil {
				t.Fatal(err)
			}
			prog, err := generate(r, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			v := newVM(t, prog)
			for _, x := range values {
				var args [6]uint64
				args[3] = x
				got := v.run(t, unix.AUDIT_ARCH_X86_64, unix.SYS_GETCWD, args)
				want := uint32(unix.SECCOMP_RET_ALLOW)
				if holds(arg, args) {
					want = unix.SECCOMP_RET_ERRNO | 22
				}
				if got != want {
					t.Errorf("%s %#x (valueTwo %#x) on %#x: got %#x, want %#x", op, val, arg.ValueTwo, x, got, want)
				}
			}
		}
	}
}

// TestLongJumps checks that a conditional jump over more than 255
// instructions is routed correctly, in both branches.
func TestLongJumps(t *testing.T) {
	var a asm
	far, near := a.newLabel(), a.newLabel()
	a.ld(offNr)
	a.jump(unix.BPF_JEQ, 1, far, next)
	a.jump(unix.BPF_JGT, 2, next, far) // 0 and 2 go far
	a.jump(unix.BPF_JEQ, 3, near, next)
	for i := range 300 {
		a.jump(unix.BPF_JEQ, uint32(1000+i), near, next)
	}
	a.ret(7)
	a.place(near)
	a.ret(8)
	for range 300 {
		a.ret(0)
	}
	a.place(far)
	a.ret(9)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, prog)
	for nr, want := range map[uint32]uint32{0: 9, 1: 9, 2: 9, 3: 8, 1000: 8, 1299: 8, 4: 7, 1300: 7} {
		if got := v.run(t, 0, nr, [6]uint64{}); got != want {
			t.Errorf("nr %d: got %d, want %d", nr, got, want)
		}
	}
}

func syscallRule(names []string, act specs.LinuxSeccompAction, errnoRet *uint, args ...specs.LinuxSeccompArg) *Syscall {
	return &Syscall{LinuxSyscall: specs.LinuxSyscall{Names: names, Action: act, ErrnoRet: errnoRet, Args: args}}
}

func TestFilterJSON(t *testing.T) {
	f, err := Compile(Default(), dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	f.Flags = unix.SECCOMP_FILTER_FLAG_LOG
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Filter
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if g.Flags != f.Flags || !slices.Equal(g.Program, f.Program) {
		t.Fatal("filter changed in a JSON round trip")
	}
	t.Logf("%d instructions, %d bytes of JSON", len(f.Program), len(data))
	var zero Filter
	if data, _ := json.Marshal(zero); json.Unmarshal(data, &g) != nil || len(g.Program) != 0 {
		t.Fatalf("zero filter does not round-trip: %s", data)
	}
	if err := json.Unmarshal([]byte(`{"program":"AAAA"}`), &g); err == nil {
		t.Fatal("a program of 3 bytes decodes")
	}
}

// BenchmarkCompileDefault also reports the CPU time per compile, which a
// busy machine inflates less than the wall-clock time.
func BenchmarkCompileDefault(b *testing.B) {
	var n int
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	for b.Loop() {
		f, err := Compile(Default(), dockerCaps)
		if err != nil {
			b.Fatal(err)
		}
		n = len(f.Program)
	}
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / time.Duration(b.N)
	b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/op")
	b.ReportMetric(float64(n), "insns")
}

// TestUnknownNamesSkipped: a name the architecture does not have is skipped
// (as libseccomp does), the rule's other names still apply.
func TestUnknownNamesSkipped(t *testing.T) {
	p, err := Load([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["no_such_syscall", "socketcall", "getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve(p, target{goarch: "amd64", kernel: kernel618})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := generate(r, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, prog)
	if got := v.run(t, unix.AUDIT_ARCH_X86_64, unix.SYS_GETCWD, [6]uint64{}); got != unix.SECCOMP_RET_ERRNO|22 {
		t.Errorf("getcwd: got %#x", got)
	}
	if got := v.run(t, unix.AUDIT_ARCH_X86_64, unix.SYS_GETPID, [6]uint64{}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("getpid: got %#x", got)
	}
}
