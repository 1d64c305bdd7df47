package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names a place in a program; jumps go to labels, and assemble turns
// them into offsets.
type label int32

// next, as a jump target, is the instruction that follows.
const next label = -1

// insn is one instruction before layout: a conditional jump's targets (jt,
// jf) and an unconditional jump's target (jt) are labels.
type insn struct {
	code   uint16
	k      uint32
	jt, jf label
}

// asm builds a classic BPF program from straight-line code with forward jumps
// to labels. Conditional jumps reach at most 255 instructions; assemble
// routes a longer one through an unconditional jump (32-bit offset) placed
// right after it.
type asm struct {
	insns  []insn
	labels []int // label → index in insns where it is placed, -1 until placed
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) place(l label) { a.labels[l] = len(a.insns) }

// ld loads the 32-bit word at off of seccomp_data into the accumulator.
func (a *asm) ld(off uint32) {
	a.insns = append(a.insns, insn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off, jt: next, jf: next})
}

// and masks the accumulator with k.
func (a *asm) and(k uint32) {
	a.insns = append(a.insns, insn{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k, jt: next, jf: next})
}

// jump compares the accumulator with k (op is BPF_JEQ, BPF_JGT, BPF_JGE or
// BPF_JSET) and goes to jt if true, to jf if not.
func (a *asm) jump(op uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, insn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

// ja always goes to l.
func (a *asm) ja(l label) {
	a.insns = append(a.insns, insn{code: unix.BPF_JMP | unix.BPF_JA, jt: l, jf: next})
}

// ret ends the program with the filter's return value k.
func (a *asm) ret(k uint32) {
	a.insns = append(a.insns, insn{code: unix.BPF_RET | unix.BPF_K, k: k, jt: next, jf: next})
}

func isCond(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// maxInsns is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const maxInsns = 4096

// assemble lays the program out and resolves its labels.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	n := len(a.insns)
	for l, at := range a.labels {
		if at < 0 {
			return nil, fmt.Errorf("assemble: label %d is not placed", l)
		}
		if at >= n {
			return nil, fmt.Errorf("assemble: label %d is past the last instruction", l)
		}
	}
	// Lay out from the end: all jumps go forward, so when instruction i is
	// placed, the distance to each of its targets is known, and with it
	// whether a branch needs an extra ja (which lengthens the other branch's
	// jump by one).
	far := make([][2]bool, n) // conditional jumps whose jt, jf go through an extra ja
	tail := make([]int, n+1)  // tail[i]: instructions emitted from insns[i] to the end
	for i := n - 1; i >= 0; i-- {
		in := a.insns[i]
		size := 1
		for b, l := range [2]label{in.jt, in.jf} {
			if l != next && a.labels[l] <= i && (isCond(in.code) || b == 0) {
				return nil, fmt.Errorf("assemble: backward jump at %d", i)
			}
		}
		if isCond(in.code) {
			extra := 0
			for changed := true; changed; {
				changed = false
				for b, l := range [2]label{in.jt, in.jf} {
					if l != next && !far[i][b] && tail[i+1]-tail[a.labels[l]]+extra > 255 {
						far[i][b] = true
						extra++
						changed = true
					}
				}
			}
			size += extra
		}
		tail[i] = tail[i+1] + size
	}
	pos := make([]int, n)
	for i := range pos {
		pos[i] = tail[0] - tail[i]
	}
	prog := make([]unix.SockFilter, 0, n)
	for i, in := range a.insns {
		switch {
		case isCond(in.code):
			var off [2]uint8
			var extra []label
			for b, l := range [2]label{in.jt, in.jf} {
				switch {
				case far[i][b]:
					off[b] = uint8(len(extra))
					extra = append(extra, l)
				case l != next:
					d := pos[a.labels[l]] - pos[i] - 1
					if d < 0 {
						return nil, fmt.Errorf("assemble: backward jump at %d", i)
					}
					off[b] = uint8(d)
				}
			}
			for b, l := range [2]label{in.jt, in.jf} {
				if l == next {
					off[b] = uint8(len(extra)) // past the extra jumps
				}
			}
			prog = append(prog, unix.SockFilter{Code: in.code, Jt: off[0], Jf: off[1], K: in.k})
			for j, l := range extra {
				d := pos[a.labels[l]] - (pos[i] + 1 + j) - 1
				prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(d)})
			}
		case in.code == unix.BPF_JMP|unix.BPF_JA:
			d := pos[a.labels[in.jt]] - pos[i] - 1
			if d < 0 {
				return nil, fmt.Errorf("assemble: backward jump at %d", i)
			}
			prog = append(prog, unix.SockFilter{Code: in.code, K: uint32(d)})
		default:
			prog = append(prog, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("assemble: program of %d instructions is longer than the kernel's limit of %d", len(prog), maxInsns)
	}
	return prog, nil
}
