package seccomp

import (
	"errors"
	"fmt"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// target is what a profile's conditions are checked against.
type target struct {
	goarch string                    // runtime.GOARCH of kiln
	caps   []string                  // capabilities of the process ("CAP_SYS_ADMIN", ...)
	kernel mobyseccomp.KernelVersion // of the running kernel
}

// nativeArches maps kiln's GOARCH to libseccomp's architecture name (used in
// includes/excludes "arches") and to SCMP_ARCH_*, as moby's goToNative and
// nativeToSeccomp do.
var nativeArches = map[string]struct {
	name string
	arch specs.Arch
}{
	"amd64": {"amd64", specs.ArchX86_64},
	"arm64": {"arm64", specs.ArchAARCH64},
}

// resolved is a profile as it applies to one process on this machine: what
// moby's setupSeccomp hands to runc.
type resolved struct {
	defaultRet uint32
	flags      uint
	arches     []specs.Arch
	rules      []specs.LinuxSyscall
}

// resolve keeps the rules of p that apply to t, exactly as moby's
// profiles/seccomp setupSeccomp does (includes: every listed cap present,
// the native arch listed, kernel >= minKernel; excludes: any listed cap
// present, the native arch listed, kernel >= minKernel), without changing p.
// It returns nil for a profile with neither defaultAction nor syscalls, which
// Docker treats as no filter.
func resolve(p *Profile, t target) (*resolved, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil
	}
	native, ok := nativeArches[t.goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %s is not supported", t.goarch)
	}
	r := &resolved{}
	var err error
	if r.defaultRet, err = action(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return nil, err // validate has checked it
	}
	if r.flags, err = filterFlags(p.Flags); err != nil {
		return nil, err
	}
	r.arches = slices.Clone(p.Architectures)
	for _, m := range p.ArchMap {
		if m.Arch == native.arch {
			r.arches = append(append(r.arches, m.Arch), m.SubArches...)
			break
		}
	}
	atLeast := func(v mobyseccomp.KernelVersion) bool {
		return t.kernel.Kernel > v.Kernel || t.kernel.Kernel == v.Kernel && t.kernel.Major >= v.Major
	}
	for _, call := range p.Syscalls {
		if ex := call.Excludes; ex != nil {
			if slices.Contains(ex.Arches, native.name) ||
				slices.ContainsFunc(ex.Caps, func(c string) bool { return slices.Contains(t.caps, c) }) ||
				ex.MinKernel != nil && atLeast(*ex.MinKernel) {
				continue
			}
		}
		if in := call.Includes; in != nil {
			if len(in.Arches) > 0 && !slices.Contains(in.Arches, native.name) ||
				slices.ContainsFunc(in.Caps, func(c string) bool { return !slices.Contains(t.caps, c) }) ||
				in.MinKernel != nil && !atLeast(*in.MinKernel) {
				continue
			}
		}
		rule := call.LinuxSyscall
		if call.Name != "" {
			rule.Names = []string{call.Name}
		}
		r.rules = append(r.rules, rule)
	}
	return r, nil
}

// errNoKernel is returned when the kernel's version cannot be read.
var errNoKernel = errors.New("read kernel version")
