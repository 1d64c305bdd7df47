package seccomp

import (
	"fmt"
	"maps"
	"runtime"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data: nr, arch, then the six 64-bit arguments
// from 16 on, whose low word comes first on the little-endian machines kiln
// runs on (amd64, arm64).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks the syscall numbers of the x32 ABI on x86_64.
const x32Bit = 0x40000000

// Compile turns a profile into the seccomp filter of a process that will hold
// the capabilities caps (names such as "CAP_SYS_ADMIN": Docker matches the
// profile's includes/excludes caps against the process's bounding set, which
// kiln makes equal to its effective set), for kiln's architecture and the
// running kernel. A profile with neither defaultAction nor syscalls gives the
// zero Filter, which installs nothing (Docker's reading of such a profile).
func Compile(p *Profile, caps []string) (Filter, error) {
	kv, err := kernelVersion()
	if err != nil {
		return Filter{}, fmt.Errorf("compile seccomp profile: %w", err)
	}
	r, err := resolve(p, target{goarch: runtime.GOARCH, caps: caps, kernel: kv})
	if err != nil || r == nil {
		return Filter{}, err
	}
	prog, err := generate(r, runtime.GOARCH)
	if err != nil {
		return Filter{}, fmt.Errorf("compile seccomp profile: %w", err)
	}
	return Filter{Flags: r.flags, Program: prog}, nil
}

// filterArches returns the architectures (arch* indexes) a filter built by
// kiln for goarch checks: the native one, then the sub-architecture the
// profile lists that the same CPU runs.
func filterArches(r *resolved, goarch string) []int {
	switch goarch {
	case "amd64":
		if slices.Contains(r.arches, specs.ArchX86) {
			return []int{archX86_64, archX86}
		}
		return []int{archX86_64}
	case "arm64":
		if slices.Contains(r.arches, specs.ArchARM) {
			return []int{archAARCH64, archARM}
		}
		return []int{archAARCH64}
	}
	return nil
}

// condRule is a rule with argument conditions, all of which must hold.
type condRule struct {
	args []specs.LinuxSeccompArg
	ret  uint32
}

// sysRules are the rules of one syscall number: the conditional ones are
// tried in profile order, then the unconditional one, then the default.
type sysRules struct {
	nr        uint32
	conds     []condRule
	uncond    uint32
	hasUncond bool
}

// denseNrs bounds the syscall numbers indexed by a slice rather than a map
// (all but ARM's private syscalls, from 0x0f0000).
const denseNrs = 1024

// archRules gathers the rules of r by syscall number on arch, sorted by
// number, and the highest number the profile names there (0 if none).
func archRules(r *resolved, arch int) ([]sysRules, uint32, error) {
	names := 0
	for _, rule := range r.rules {
		names += len(rule.Names)
	}
	var (
		rules  = make([]sysRules, 0, names)
		dense  [denseNrs]int32 // nr → 1 + index in rules
		sparse map[uint32]int32
		maxNr  uint32
	)
	get := func(nr uint32) *sysRules {
		var i int32
		if nr < denseNrs {
			i = dense[nr]
		} else {
			i = sparse[nr]
		}
		if i == 0 {
			rules = append(rules, sysRules{nr: nr})
			i = int32(len(rules))
			if nr < denseNrs {
				dense[nr] = i
			} else {
				if sparse == nil {
					sparse = map[uint32]int32{}
				}
				sparse[nr] = i
			}
		}
		return &rules[i-1]
	}
	for _, rule := range r.rules {
		ret, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, 0, fmt.Errorf("%v: %w", rule.Names, err)
		}
		for _, name := range rule.Names {
			nr, ok := syscallNumber(name, arch)
			if !ok {
				continue // not a syscall of this architecture: skipped, as libseccomp does
			}
			maxNr = max(maxNr, nr)
			if ret == r.defaultRet {
				continue // runc skips rules that repeat the default action
			}
			s := get(nr)
			if len(rule.Args) == 0 {
				if s.hasUncond && s.uncond != ret {
					return nil, 0, fmt.Errorf("%w: syscall %s has two rules without args and with different actions", ErrInvalid, name)
				}
				s.uncond, s.hasUncond = ret, true
				continue
			}
			// As runc does: conditions on distinct arguments must all hold;
			// several conditions on one argument are separate rules.
			if sameIndex(rule.Args) {
				for _, arg := range rule.Args {
					s.conds = append(s.conds, condRule{args: []specs.LinuxSeccompArg{arg}, ret: ret})
				}
			} else {
				s.conds = append(s.conds, condRule{args: rule.Args, ret: ret})
			}
		}
	}
	sorted := make([]sysRules, 0, len(rules))
	for _, i := range dense {
		if i != 0 {
			sorted = append(sorted, rules[i-1])
		}
	}
	for _, nr := range slices.Sorted(maps.Keys(sparse)) {
		sorted = append(sorted, rules[sparse[nr]-1])
	}
	return sorted, maxNr, nil
}

func sameIndex(args []specs.LinuxSeccompArg) bool {
	var seen [6]bool
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}

// generator emits one filter program.
type generator struct {
	asm
	rets map[uint32]label // shared "ret K" instructions, emitted at the end
}

func (g *generator) retLabel(k uint32) label {
	l, ok := g.rets[k]
	if !ok {
		l = g.newLabel()
		g.rets[k] = l
	}
	return l
}

// generate builds the program for r on goarch:
//
//	load arch; one jeq per architecture; otherwise kill the process
//	per architecture: load nr; [x86_64: x32 → EPERM]; [nr > highest named → ENOSYS];
//	  binary search on nr (leaves of at most 4 jeq) → rules of that nr, else the default
//	shared ret instructions
func generate(r *resolved, goarch string) ([]unix.SockFilter, error) {
	arches := filterArches(r, goarch)
	if len(arches) == 0 {
		return nil, fmt.Errorf("architecture %s is not supported", goarch)
	}
	g := &generator{asm: asm{insns: make([]insn, 0, 4096), labels: make([]int, 0, 1024)}, rets: map[uint32]label{}}
	dflt := g.retLabel(r.defaultRet)

	archLabels := make([]label, len(arches))
	g.ld(offArch)
	for i, arch := range arches {
		archLabels[i] = g.newLabel()
		g.jump(unix.BPF_JEQ, archInfos[arch].audit, archLabels[i], next)
	}
	g.ret(unix.SECCOMP_RET_KILL_PROCESS)

	for i, arch := range arches {
		rules, maxNr, err := archRules(r, arch)
		if err != nil {
			return nil, err
		}
		g.place(archLabels[i])
		g.ld(offNr)
		if arch == archX86_64 {
			g.jump(unix.BPF_JSET, x32Bit, g.retLabel(unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)), next)
		}
		if !allows(r.defaultRet) && maxNr > 0 {
			g.jump(unix.BPF_JGT, maxNr, g.retLabel(unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)), next)
		}
		nrs := make([]uint32, len(rules))
		targets := make([]label, len(rules))
		for j, s := range rules {
			nrs[j] = s.nr
			if len(s.conds) == 0 {
				targets[j] = g.retLabel(s.uncond)
			} else {
				targets[j] = g.newLabel()
			}
		}
		if len(nrs) == 0 {
			g.ja(dflt)
		} else {
			g.search(nrs, targets, dflt)
		}
		for j, s := range rules {
			if len(s.conds) == 0 {
				continue
			}
			g.place(targets[j])
			for _, c := range s.conds {
				fail := g.newLabel()
				for _, arg := range c.args {
					g.arg(arg, fail)
				}
				g.ret(c.ret)
				g.place(fail)
			}
			if s.hasUncond {
				g.ret(s.uncond)
			} else {
				g.ret(r.defaultRet)
			}
		}
	}
	rets := make([]uint32, 0, len(g.rets))
	for k := range g.rets {
		rets = append(rets, k)
	}
	slices.Sort(rets) // a stable program for a given profile
	for _, k := range rets {
		g.place(g.rets[k])
		g.ret(k)
	}
	return g.assemble()
}

// search emits a binary search of the accumulator (the syscall number) over
// the sorted nrs, going to targets[i] on nrs[i] and to dflt on no match.
func (g *generator) search(nrs []uint32, targets []label, dflt label) {
	if len(nrs) <= 4 {
		for i, nr := range nrs {
			miss := next
			if i == len(nrs)-1 {
				miss = dflt
			}
			g.jump(unix.BPF_JEQ, nr, targets[i], miss)
		}
		return
	}
	mid := len(nrs) / 2
	upper := g.newLabel()
	g.jump(unix.BPF_JGE, nrs[mid], upper, next)
	g.search(nrs[:mid], targets[:mid], dflt)
	g.place(upper)
	g.search(nrs[mid:], targets[mid:], dflt)
}

// arg emits the check of one argument condition as two 32-bit comparisons:
// it falls through when the condition holds and goes to fail when not.
func (g *generator) arg(a specs.LinuxSeccompArg, fail label) {
	lo, hi := offArgs+8*uint32(a.Index), offArgs+8*uint32(a.Index)+4
	vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
	pass := g.newLabel()
	switch a.Op {
	case specs.OpEqualTo:
		g.ld(hi)
		g.jump(unix.BPF_JEQ, vhi, next, fail)
		g.ld(lo)
		g.jump(unix.BPF_JEQ, vlo, next, fail)
	case specs.OpNotEqual:
		g.ld(hi)
		g.jump(unix.BPF_JEQ, vhi, next, pass)
		g.ld(lo)
		g.jump(unix.BPF_JEQ, vlo, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		op := uint16(unix.BPF_JGT)
		if a.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		g.ld(hi)
		g.jump(unix.BPF_JGT, vhi, pass, next)
		g.jump(unix.BPF_JEQ, vhi, next, fail)
		g.ld(lo)
		g.jump(op, vlo, next, fail)
	case specs.OpLessThan, specs.OpLessEqual: // not (>=), not (>)
		op := uint16(unix.BPF_JGE)
		if a.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		g.ld(hi)
		g.jump(unix.BPF_JGT, vhi, fail, next)
		g.jump(unix.BPF_JEQ, vhi, next, pass)
		g.ld(lo)
		g.jump(op, vlo, fail, next)
	case specs.OpMaskedEqual: // (arg & value) == valueTwo
		g.ld(hi)
		g.and(vhi)
		g.jump(unix.BPF_JEQ, uint32(a.ValueTwo>>32), next, fail)
		g.ld(lo)
		g.and(vlo)
		g.jump(unix.BPF_JEQ, uint32(a.ValueTwo), next, fail)
	}
	g.place(pass)
}
