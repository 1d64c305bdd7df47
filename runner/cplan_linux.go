package runner

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// The sandbox init has two implementations: the Go one (Init), and one in
// C (cinit_linux.c) that runs in a constructor of the binary before the Go
// runtime starts, and so saves the sandbox the runtime's start (tens of
// milliseconds of CPU on a slow machine). The config Run sends starts with
// a byte that says which one runs: 'G', then the initConfig JSON for Init;
// or 'C', then a plan for the C init: the init's work with all its policy
// applied by the parent (mount options parsed, devices listed, the
// capability set as a bitmask), as a list of operations the C side
// carries out in order. What depends on the image (paths resolved inside
// the root, stubs, users, the working directory, PATH) stays the C side's,
// done as the Go init does it.
//
// The plan is little-endian binary: a magic number, then operations, each
// a uint32 code and its fields: uint32, uint64, and strings as a uint32
// length, the bytes and a NUL.

const (
	configGo   = 'G'
	configC    = 'C'
	cPlanMagic = 0x6b636931 // cinit_linux.c PLAN_MAGIC
)

// Plan operations: cinit_linux.c's OP_*.
const (
	copCgroupNS    = iota + 1 // unshare the cgroup namespace
	copRootProp               // flags, what: the propagation of /
	copMountRootfs            // target, mount: the merged tree
	copOpenRoot               // rootfs: the root everything below is resolved in
	copStubs                  // upper, count, (target, dir)...: the mount stubs, reported
	copPlanned                // target, dir, nested, mount, has fallback, [fallback], dev, [dev plan]: mountPlanned
	copDevice                 // target, source, mode, rdev, uid, gid: makeDevice
	copRORootfs               // rootfs: remount it read-only
	copPivot                  // rootfs
	copMountPath              // source, target, type, flags, data, what: mount(2) after pivot_root
	copMkdir                  // path, mode, what
	copSymlink                // target, path, what
	copSysctl                 // path, value, name
	copMask                   // path
	copROPath                 // path
	copHostname               // name
	copLoopback               // bring lo up
	copExec                   // execProcess's fields: the last operation
)

// Mount kinds of a plan's mount (mountOn's cases).
const (
	cMountGeneric = iota
	cMountBind
	cMountOverlay
)

type planWriter struct {
	b   []byte
	bad bool // a string the C side cannot take (a NUL in it)
}

func (w *planWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *planWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *planWriter) op(op uint32) { w.u32(op) }

func (w *planWriter) bool(v bool) {
	if v {
		w.u32(1)
	} else {
		w.u32(0)
	}
}

func (w *planWriter) bytes(b []byte) {
	w.u32(uint32(len(b)))
	w.b = append(append(w.b, b...), 0)
}

func (w *planWriter) str(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		w.bad = true
	}
	w.u32(uint32(len(s)))
	w.b = append(append(w.b, s...), 0)
}

func (w *planWriter) strs(ss []string) {
	w.u32(uint32(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

// mount writes m as mountOn would mount it.
func (w *planWriter) mount(m Mount) {
	switch m.Type {
	case "overlay":
		lowers, rest := overlayOptions(m.Options)
		if layer.UserXattrOverlay() {
			rest = userxattrOptions(rest)
		}
		o := parseMountOptions(rest)
		w.u32(cMountOverlay)
		w.str(m.Type)
		w.str("overlay")
		w.u64(uint64(o.flags))
		w.u64(uint64(o.propagation))
		w.str("")
		w.strs(lowers)
		w.strs(o.data)
		w.u32(uint32(o.attrs))
		w.bool(slices.Contains(rest, overlayVolatile))
		classic, err := overlayData(lowers, o.data, os.Getpagesize())
		noVolatile, _ := overlayData(lowers, slices.DeleteFunc(slices.Clone(o.data), func(s string) bool { return s == overlayVolatile }), os.Getpagesize())
		w.str(classic)
		w.str(noVolatile)
		if err != nil {
			w.str(err.Error())
		} else {
			w.str("")
		}
	case "bind", "rbind":
		o := parseMountOptions(m.Options)
		flags := o.flags | unix.MS_BIND
		if m.Type == "rbind" {
			flags |= unix.MS_REC
		}
		w.u32(cMountBind)
		w.str(m.Type)
		w.str(m.Source)
		w.u64(uint64(flags))
		w.u64(uint64(o.propagation))
		w.str("")
	default:
		o := parseMountOptions(m.Options)
		w.u32(cMountGeneric)
		w.str(m.Type)
		w.str(m.Source)
		w.u64(uint64(o.flags))
		w.u64(uint64(o.propagation))
		w.str(strings.Join(o.data, ","))
	}
}

// devPlan writes what populateDev does in the /dev tmpfs.
func (w *planWriter) devPlan(cfg *initConfig) {
	var host []hostDevice
	if cfg.Privileged {
		host = hostDevices()
	}
	w.u32(uint32(len(host)))
	for _, d := range host {
		w.str(d.rel)
		w.bool(d.dir)
		w.u32(d.mode)
		w.u64(d.rdev)
		w.u32(d.uid)
		w.u32(d.gid)
	}
	w.u32(uint32(len(devices)))
	for _, d := range devices {
		w.str(d.name)
		w.u64(unix.Mkdev(d.major, d.minor))
	}
	mounts := devMounts(shmSize(cfg))
	w.u32(uint32(len(mounts)))
	for _, m := range mounts {
		o := parseMountOptions(m.m.Options)
		w.str(m.dir)
		w.str(m.m.Type)
		w.str(m.m.Source)
		w.u32(m.mode)
		w.u64(uint64(o.flags))
		w.str(strings.Join(o.data, ","))
		if m.dir == "pts" {
			w.str(strings.Join(parseMountOptions(withoutTTYGroup(m.m.Options)).data, ","))
		} else {
			w.str("")
		}
	}
	w.u32(uint32(len(devSymlinks)))
	for _, l := range devSymlinks {
		w.str(l[0])
		w.str(l[1])
	}
}

// cgroupfsPlan writes mountCgroupfs, for the hierarchies this process
// (the sandbox's parent, in the same cgroup hierarchies) belongs to.
func (w *planWriter) cgroupfsPlan(rw bool) bool {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false // the Go init says why
	}
	var ro uint64
	if !rw {
		ro = unix.MS_RDONLY
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	const root = "/sys/fs/cgroup"
	mountPath := func(src, target, fstype string, flags uint64, data, what string) {
		w.op(copMountPath)
		w.str(src)
		w.str(target)
		w.str(fstype)
		w.u64(flags)
		w.str(data)
		w.str(what)
	}
	v1, unified := parseProcCgroup(string(data))
	if len(v1) == 0 {
		if unified {
			mountPath("cgroup2", root, "cgroup2", flags|ro, "", "mount cgroup2 on "+root)
		}
		return true
	}
	mountPath("tmpfs", root, "tmpfs", flags, "mode=755,size=64k", "mount tmpfs on "+root)
	for _, h := range v1 {
		dir := root + "/" + h.dir()
		w.op(copMkdir)
		w.str(dir)
		w.u32(0o555)
		w.str("mount cgroup " + h.Controllers)
		mountPath("cgroup", dir, "cgroup", flags|ro, h.options(), "mount cgroup "+h.Controllers+" on "+dir)
		for _, l := range h.links() {
			w.op(copSymlink)
			w.str(h.dir())
			w.str(root + "/" + l)
			w.str("link cgroup " + l)
		}
	}
	if !rw {
		mountPath("", root, "", unix.MS_REMOUNT|unix.MS_BIND|flags|unix.MS_RDONLY, "", "remount "+root+" read-only")
	}
	return true
}

// testGoInit, set by tests, makes every sandbox run the Go init.
var testGoInit bool

// cPlan is the C init's plan for cfg, or false when the Go init must run
// it: a terminal, a tiny init, OCI hooks or a volume to fill from the
// image (work the C init does not do), or something the plan cannot say
// (the Go init then reports the error).
func cPlan(cfg *initConfig) ([]byte, bool) {
	if !cInitBuilt || testGoInit || cfg.Terminal || cfg.Init || cfg.Hooks != nil {
		return nil, false
	}
	plan := planMounts(cfg)
	for _, pm := range plan {
		if pm.populate {
			return nil, false
		}
	}
	w := &planWriter{b: make([]byte, 0, 4096)}
	w.u32(cPlanMagic)
	if cfg.CgroupNS {
		w.op(copCgroupNS)
	}
	// setupRootfs
	w.op(copRootProp)
	if rootfsSlave(cfg.ExtraMounts) {
		w.u64(unix.MS_REC | unix.MS_SLAVE)
		w.str("make / rslave")
	} else {
		w.u64(unix.MS_REC | unix.MS_PRIVATE)
		w.str("make / rprivate")
	}
	m := OverlayMount(cfg.Rootfs, cfg.Lowers, cfg.Upper, cfg.Work)
	if cfg.Volatile {
		m = m.Volatile()
	}
	w.op(copMountRootfs)
	w.str(cfg.Rootfs)
	w.mount(m)
	w.op(copOpenRoot)
	w.str(cfg.Rootfs)
	w.op(copStubs)
	w.str(cfg.Upper)
	var stubs []plannedMount
	for _, pm := range plan {
		if !pm.nested {
			stubs = append(stubs, pm)
		}
	}
	w.u32(uint32(len(stubs)))
	for _, pm := range stubs {
		w.str(pm.Target)
		w.bool(pm.dir)
	}
	for _, pm := range plan {
		w.op(copPlanned)
		w.str(pm.Target)
		w.bool(pm.dir)
		w.bool(pm.nested)
		w.mount(pm.Mount)
		w.bool(pm.fallback != nil)
		if pm.fallback != nil {
			w.mount(*pm.fallback)
		}
		w.bool(pm.dev)
		if pm.dev {
			w.devPlan(cfg)
		}
	}
	for _, d := range cfg.Devices {
		var st unix.Stat_t
		if d.Source == "" && d.Node != nil {
			st = d.Node.stat()
		} else if err := unix.Stat(d.Source, &st); err != nil {
			return nil, false
		} else if t := st.Mode & unix.S_IFMT; t != unix.S_IFCHR && t != unix.S_IFBLK {
			return nil, false
		}
		w.op(copDevice)
		w.str(d.Target)
		w.str(d.Source)
		w.u32(st.Mode)
		w.u64(st.Rdev)
		w.u32(st.Uid)
		w.u32(st.Gid)
	}
	if cfg.ReadonlyRootfs {
		w.op(copRORootfs)
		w.str(cfg.Rootfs)
	}
	w.op(copPivot)
	w.str(cfg.Rootfs)
	// initSandbox, after the pivot
	if cfg.CgroupNS && !w.cgroupfsPlan(cfg.Privileged) {
		return nil, false
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Sysctls)) {
		p, err := sysctlPath(name)
		if err != nil {
			return nil, false
		}
		w.op(copSysctl)
		w.str(p)
		w.str(cfg.Sysctls[name])
		w.str(name)
	}
	for _, p := range cfg.MaskedPaths {
		w.op(copMask)
		w.str(p)
	}
	for _, p := range cfg.ReadonlyPaths {
		w.op(copROPath)
		w.str(p)
	}
	w.op(copHostname)
	w.bytes([]byte(cfg.Hostname))
	if cfg.NetNone {
		w.op(copLoopback)
	}
	// execProcess
	w.op(copExec)
	w.str(cfg.User)
	w.str(path.Clean("/" + cfg.Cwd))
	w.strs(cfg.Args)
	w.strs(cfg.Env)
	var keep uint64
	for _, c := range cfg.Capabilities {
		if n, ok := capabilityNumber(c); ok && n < 64 {
			keep |= 1 << n
		}
	}
	w.bool(cfg.Capabilities != nil)
	w.u64(keep)
	w.u32(uint32(lastCap()))
	w.bool(cfg.NoNewPrivileges)
	var prog []byte
	var flags uint
	if cfg.Seccomp != nil {
		flags = cfg.Seccomp.Flags
		if flags&^(unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) != 0 || len(cfg.Seccomp.Program) > 4096 {
			return nil, false // the Go init's Install says why
		}
		for _, in := range cfg.Seccomp.Program {
			prog = binary.LittleEndian.AppendUint16(prog, in.Code)
			prog = append(prog, in.Jt, in.Jf)
			prog = binary.LittleEndian.AppendUint32(prog, in.K)
		}
	}
	w.u32(uint32(flags))
	w.bytes(prog)
	if len(cfg.Rlimits) > 64 {
		return nil, false
	}
	w.u32(uint32(len(cfg.Rlimits)))
	for _, r := range cfg.Rlimits {
		w.u32(uint32(r.Type))
		w.u64(r.Soft)
		w.u64(r.Hard)
	}
	setgroups, _ := os.ReadFile("/proc/self/setgroups") // the sandbox's user namespace is ours
	w.bool(strings.TrimSpace(string(setgroups)) == "deny")
	if w.bad {
		return nil, false
	}
	return w.b, true
}

// writeConfig sends cfg to the init on w: a plan for the C init when it
// can run cfg, else the JSON for the Go init. It reports which.
func writeConfig(w io.Writer, cfg *initConfig) (cInit bool, err error) {
	if plan, ok := cPlan(cfg); ok {
		_, err = w.Write(append([]byte{configC}, plan...))
		return true, err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return false, err
	}
	_, err = w.Write(append(append([]byte{configGo}, data...), '\n'))
	return false, err
}
