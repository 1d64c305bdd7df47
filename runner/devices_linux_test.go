package runner

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// devAccess is one access the kernel asks a device program about.
type devAccess struct {
	typ          byte   // 'c' or 'b'
	access       string // some of r, w, m
	major, minor uint32
}

func (a devAccess) String() string {
	return fmt.Sprintf("%c %d:%d %s", a.typ, a.major, a.minor, a.access)
}

// runDeviceFilter runs insns as the kernel would, on the instruction
// encoding the kernel gets (jumps resolved by Marshal), for the access a.
// It knows the few instructions deviceFilter emits and fails on others.
func runDeviceFilter(t *testing.T, insns asm.Instructions, a devAccess) bool {
	t.Helper()
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, hostByteOrder()); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	raw := buf.Bytes()
	ctx := [3]uint32{uint32(deviceType(a.typ)) | uint32(deviceAccess(a.access))<<16, a.major, a.minor}
	var reg [11]uint64
	ctxReg := true // R1 still holds the context pointer
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || 8*pc >= len(raw) || steps > 10000 {
			t.Fatalf("%s: pc %d out of the program (%d instructions)", a, pc, len(raw)/8)
		}
		in := raw[8*pc : 8*pc+8]
		code, dst, src := in[0], in[1]&0xf, in[1]>>4
		off := int16(binary.NativeEndian.Uint16(in[2:]))
		imm := int32(binary.NativeEndian.Uint32(in[4:]))
		operand := uint64(int64(imm)) // sign-extended, as the kernel does
		if code&0x08 != 0 {           // BPF_X: the source register
			operand = reg[src]
		}
		switch {
		case code == 0x61: // LDX MEM W
			if src != 1 || !ctxReg || off%4 != 0 || off < 0 || off > 8 {
				t.Fatalf("%s: load from r%d%+d", a, src, off)
			}
			reg[dst] = uint64(ctx[off/4])
		case code&0x07 == 0x04: // ALU (32-bit): the result is zero-extended
			switch code & 0xf0 {
			case 0x50:
				reg[dst] = uint64(uint32(reg[dst]) & uint32(operand))
			case 0x70:
				reg[dst] = uint64(uint32(reg[dst]) >> (operand & 31))
			case 0xb0:
				reg[dst] = uint64(uint32(operand))
			default:
				t.Fatalf("%s: unexpected ALU op %#x", a, code)
			}
			if dst == 1 {
				ctxReg = false
			}
		case code == 0x95: // EXIT
			return reg[0] == 1
		case code&0x07 == 0x05 && code&0xf0 == 0x50: // JNE (64-bit)
			if reg[dst] != operand {
				pc += int(off)
			}
		default:
			t.Fatalf("%s: unexpected instruction %#x", a, code)
		}
	}
}

// hostByteOrder is binary.LittleEndian or BigEndian, which Marshal takes
// (not binary.NativeEndian).
func hostByteOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// The program allows what the rules allow, as the v1 devices controller
// would, and nothing else.
func TestDeviceFilter(t *testing.T) {
	withKmsgRead := append(slices.Clone(DefaultDevices), "c 1:11 r")
	for _, tc := range []struct {
		rules []string
		allow []string // accesses allowed: "c 1:3 rw"
		deny  []string
	}{
		{DefaultDevices,
			[]string{"c 1:3 r", "c 1:3 rw", "c 1:3 m", "c 1:5 w", "c 1:9 r", "c 5:2 rw", "c 136:0 rw", "c 136:77 w",
				"c 10:200 rw", "c 1:11 m", "b 254:0 m", "b 8:0 m", "c 4:1 m"},
			[]string{"c 1:11 r", "c 1:11 w", "c 1:1 r", "b 254:0 r", "b 254:0 w", "b 254:0 rw", "b 1:3 r",
				"c 10:201 r", "c 5:3 r", "c 137:0 r", "c 1:11 rm"}},
		{withKmsgRead,
			[]string{"c 1:11 r", "c 1:3 rw"},
			[]string{"c 1:11 w", "c 1:11 rw", "c 1:12 r", "b 1:11 r"}},
		{[]string{}, nil, []string{"c 1:3 r", "c 1:3 m", "b 8:0 m"}},
		{[]string{"a"}, []string{"c 1:11 rw", "b 254:0 rw", "b 8:0 m"}, nil},
		{[]string{"c 1:3 rwm", "a *:* rwm", "c 1:5 r"}, []string{"b 254:0 w", "c 1:11 r"}, nil},
		{[]string{"b 8:* rw"}, []string{"b 8:1 r", "b 8:16 rw"}, []string{"b 8:1 m", "c 8:1 r", "b 9:1 r"}},
		{[]string{"c *:3 w", "c 7:* m"}, []string{"c 7:3 w", "c 9:3 w", "c 7:4 m"}, []string{"c 7:4 w", "c 7:3 r", "c 9:4 m"}},
		{[]string{"c 4095:1048575 rwm"}, []string{"c 4095:1048575 rw"}, []string{"c 4095:1048574 r"}},
	} {
		rules, err := parseDeviceRules(tc.rules)
		if err != nil {
			t.Fatal(err)
		}
		insns := deviceFilter(rules)
		for _, want := range []bool{true, false} {
			list := tc.allow
			if !want {
				list = tc.deny
			}
			for _, s := range list {
				a := parseAccess(t, s)
				if got := runDeviceFilter(t, insns, a); got != want {
					t.Errorf("rules %q: %s allowed %v, want %v\n%v", tc.rules, a, got, want, insns)
				}
			}
		}
	}
}

// parseAccess parses "c 1:3 rw" into a devAccess.
func parseAccess(t *testing.T, s string) devAccess {
	t.Helper()
	var a devAccess
	if _, err := fmt.Sscanf(s, "%c %d:%d %s", &a.typ, &a.major, &a.minor, &a.access); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return a
}

// The kernel's verifier takes the programs.
func TestDeviceFilterLoads(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, rules := range [][]string{DefaultDevices, {}, {"a"}, {"b 8:* rw", "c *:3 w"}} {
		parsed, err := parseDeviceRules(rules)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := loadDeviceFilter(parsed)
		if err != nil {
			t.Fatalf("rules %q: %v", rules, err)
		}
		prog.Close()
	}
}

// mountCgroup2 mounts a cgroup2 hierarchy on a temporary directory (in the
// test's own mount namespace, see TestMain) and unmounts it at the end. On
// a cgroup v1 host it is the otherwise unused unified hierarchy: no
// controller, but device programs work on any of its cgroups.
func mountCgroup2(t *testing.T) string {
	t.Helper()
	kilntest.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		t.Fatalf("mount cgroup2 on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		// Cgroups left in it would outlive the mount, unseen. (On a v2 host
		// this is the host's hierarchy: only this test's cgroups count.)
		pid := strconv.Itoa(os.Getpid())
		for _, sub := range []string{"", "kiln"} {
			entries, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range entries {
				if e.IsDir() && strings.Contains(e.Name(), "-"+pid) {
					t.Errorf("cgroup %s left behind", filepath.Join(sub, e.Name()))
				}
			}
		}
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// deviceFilterIDs are the IDs of the device programs attached to dir.
func deviceFilterIDs(t *testing.T, dir string) []ebpf.ProgramID {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		t.Fatalf("query device programs of %s: %v", dir, err)
	}
	var ids []ebpf.ProgramID
	for _, p := range res.Programs {
		ids = append(ids, p.ID)
	}
	return ids
}

// hostBlockDevice is the major and minor of a block device of the host
// that this test process can open, a disk from /proc/partitions if one
// opens (a machine may forbid opening its disk to everyone: a BPF LSM
// here), else any from /sys/dev/block: the sandbox failing to open it then
// shows the device program at work.
func hostBlockDevice(t *testing.T) (uint32, uint32) {
	t.Helper()
	var candidates [][2]uint32
	data, err := os.ReadFile("/proc/partitions")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var major, minor uint32
		var blocks uint64
		var name string
		if n, _ := fmt.Sscanf(line, "%d %d %d %s", &major, &minor, &blocks, &name); n == 4 &&
			!strings.HasPrefix(name, "loop") && !strings.HasPrefix(name, "ram") {
			candidates = append(candidates, [2]uint32{major, minor})
		}
	}
	entries, _ := os.ReadDir("/sys/dev/block")
	for _, e := range entries {
		var major, minor uint32
		if n, _ := fmt.Sscanf(e.Name(), "%d:%d", &major, &minor); n == 2 {
			candidates = append(candidates, [2]uint32{major, minor})
		}
	}
	dir := t.TempDir()
	for i, c := range candidates {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(c[0], c[1]))); err != nil {
			t.Fatalf("mknod: %v", err)
		}
		if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
			return c[0], c[1]
		}
	}
	t.Fatalf("no block device of this host opens here (tried %v)", candidates)
	return 0, 0
}

// deviceProbe is the script a sandbox runs to try devices: it makes
// /dev/probe-kmsg (c 1:11, the kernel log) and /dev/probe-disk (a host
// disk), then opens them and /dev/null, printing one line per step: "ok"
// or the shell's error.
func deviceProbe(t *testing.T) string {
	major, minor := hostBlockDevice(t)
	return fmt.Sprintf(`
try() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name: ok"; else echo "$name: $out"; fi; }
try "mknod kmsg" busybox mknod /dev/probe-kmsg c 1 11
try "mknod disk" busybox mknod /dev/probe-disk b %d %d
try "read kmsg" sh -c 'exec 3</dev/probe-kmsg'
try "write kmsg" sh -c 'exec 3>/dev/probe-kmsg'
try "read disk" sh -c 'exec 3</dev/probe-disk'
try "write null" sh -c 'echo x >/dev/null'
try "read zero" sh -c 'exec 3</dev/zero'
`, major, minor)
}

// probeDevices runs deviceProbe in a sandbox with Docker's default
// confinement started in the cgroup dirs, through Run, which joins the
// sandbox to them before its init does anything. It returns each step's
// result. The sandbox has CAP_SYSLOG too: reading /dev/kmsg takes it when
// kernel.dmesg_restrict is set, and only the device program may refuse.
func probeDevices(t *testing.T, cgroups []string) map[string]string {
	t.Helper()
	s := newSpec(t, true, "sh", "-c", deviceProbe(t))
	c, err := Security{CapAdd: []string{"CAP_SYSLOG"}}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	c.Confine(s)
	s.Cgroups = cgroups
	out := mustRun(t, s)
	t.Logf("in %v:\n%s", cgroups, out)
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		res[k] = v
	}
	return res
}

const eperm = "Operation not permitted"

// checkProbe compares a probe's results with want ("ok", or eperm for a
// refused step).
func checkProbe(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g != w && !(w == eperm && strings.HasSuffix(g, eperm)) {
			t.Errorf("%s: %s: %q, want %q", what, k, g, w)
		}
	}
}

// On cgroup v2, NewCgroup and NewBuildCgroup confine their cgroup's
// processes to the allowed devices with a device program: a sandbox may
// make any device node but open only the allowed ones.
func TestCgroupV2Devices(t *testing.T) {
	root := mountCgroup2(t)
	base := fmt.Sprintf("kiln-test-%d", os.Getpid())
	c := openCgroupIn(root, base+"/x", cgroupV1Controllers)
	if !c.v2 || !slices.Equal(c.Dirs(), []string{filepath.Join(root, base, "x")}) {
		t.Fatalf("a cgroup2 root not taken for v2: %+v", c)
	}
	defaults := map[string]string{
		"mknod kmsg": "ok", "mknod disk": "ok", "read kmsg": eperm, "write kmsg": eperm,
		"read disk": eperm, "write null": "ok", "read zero": "ok",
	}

	// A container: DefaultDevices, then with a read-only --device.
	cg, err := newCgroupIn(root, base+"/default", Resources{Devices: DefaultDevices})
	if err != nil {
		t.Fatal(err)
	}
	removeParents(t, cg) // after the Remove below
	t.Cleanup(func() { cg.Remove() })
	if ids := deviceFilterIDs(t, cg.Dirs()[0]); len(ids) != 1 {
		t.Errorf("device programs attached: %v, want one", ids)
	}
	checkProbe(t, "DefaultDevices", probeDevices(t, cg.Dirs()), defaults)

	kmsg, err := newCgroupIn(root, base+"/kmsg", Resources{Devices: append(slices.Clone(DefaultDevices), "c 1:11 r")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kmsg.Remove() })
	withKmsg := map[string]string{"read kmsg": "ok", "write kmsg": eperm, "read disk": eperm, "write null": "ok"}
	checkProbe(t, "c 1:11 r", probeDevices(t, kmsg.Dirs()), withKmsg)

	// Privileged: no rules, no program, every device.
	priv, err := newCgroupIn(root, base+"/privileged", Resources{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { priv.Remove() })
	if ids := deviceFilterIDs(t, priv.Dirs()[0]); len(ids) != 0 {
		t.Errorf("device programs attached to a privileged cgroup: %v", ids)
	}
	checkProbe(t, "no rules", probeDevices(t, priv.Dirs()), map[string]string{"read kmsg": "ok", "write kmsg": "ok", "read disk": "ok"})

	// No rule: not even a node is made.
	none, err := newCgroupIn(root, base+"/none", Resources{Devices: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { none.Remove() })
	checkProbe(t, "no device", probeDevices(t, none.Dirs()), map[string]string{
		"mknod kmsg": eperm, "mknod disk": eperm, "write null": eperm, "read zero": eperm,
	})

	// Made again over a cgroup that was left behind: the new rules replace
	// the old program instead of adding to it.
	again, err := newCgroupIn(root, base+"/default", Resources{Devices: append(slices.Clone(DefaultDevices), "c 1:11 r")})
	if err != nil {
		t.Fatal(err)
	}
	if ids := deviceFilterIDs(t, again.Dirs()[0]); len(ids) != 1 {
		t.Errorf("device programs after a second NewCgroup: %v, want one", ids)
	}
	checkProbe(t, "made again", probeDevices(t, again.Dirs()), withKmsg)

	// A build's cgroup: DefaultDevices.
	build, err := newBuildCgroupIn(root)
	if err != nil {
		t.Fatal(err)
	}
	removeParents(t, build) // after the Remove below
	t.Cleanup(func() { build.Remove() })
	if dirs := build.Dirs(); len(dirs) != 1 || !strings.HasPrefix(dirs[0], filepath.Join(root, "kiln", buildCgroupPrefix)) {
		t.Errorf("build cgroup %v", dirs)
	}
	checkProbe(t, "build", probeDevices(t, build.Dirs()), defaults)

	// Bad rules are refused before anything is made.
	if _, err := newCgroupIn(root, base+"/bad", Resources{Devices: []string{"c 1:3 rwx"}}); err == nil ||
		!strings.Contains(err.Error(), `invalid device rule "c 1:3 rwx"`) {
		t.Errorf("a bad rule: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, base, "bad")); err == nil {
		t.Errorf("a cgroup made for a bad rule")
	}

	// The cgroups, programs attached, go with Remove.
	for _, c := range []*Cgroup{cg, kmsg, priv, none, build} {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
		for _, d := range c.Dirs() {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s left behind", d)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, base)); err != nil {
		t.Errorf("the parent %s: %v (Remove leaves it)", base, err)
	}
}
