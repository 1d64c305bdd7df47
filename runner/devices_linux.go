package runner

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// On cgroup v2 there is no devices controller: the kernel asks the
// BPF_PROG_TYPE_CGROUP_DEVICE programs attached to a task's cgroup and its
// ancestors on every mknod and every open of a device node, and refuses
// (EPERM) unless all of them return 1. kiln attaches one program, made from
// the same allow rules the v1 devices.allow file takes, as runc does.

// deviceFilterLicense is the license the program is loaded under; it
// calls no helper, so no helper's license requirement applies.
const deviceFilterLicense = "Apache-2.0"

// deviceFilter returns the program allowing exactly what rules allow and
// denying everything else. It reads struct bpf_cgroup_dev_ctx (u32
// access_type: device type in the low 16 bits, access in the high 16;
// u32 major; u32 minor) into R2 (type), R3 (access), R4 (major) and R5
// (minor), then tests the rules in order, one block each: a block jumps to
// the next one at the first field that does not match, and returns 1 when
// all do. An access needs one rule covering all of it (open O_RDWR needs a
// rule with both r and w), as on v1. After the last block, it returns 0.
func deviceFilter(rules []deviceRule) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	for i, r := range rules {
		if r.Type == 'a' {
			// Everything: the rules after it cannot add to it.
			insns = append(insns, asm.Mov.Imm32(asm.R0, 1).WithSymbol(deviceBlock(i)), asm.Return())
			return insns
		}
		next := deviceBlock(i + 1)
		block := asm.Instructions{
			asm.JNE.Imm(asm.R2, deviceType(r.Type), next),
		}
		if access := deviceAccess(r.Access); access != unix.BPF_DEVCG_ACC_READ|unix.BPF_DEVCG_ACC_WRITE|unix.BPF_DEVCG_ACC_MKNOD {
			// if (access & rule's) != access goto next, R1 as scratch.
			block = append(block,
				asm.Mov.Reg32(asm.R1, asm.R3),
				asm.And.Imm32(asm.R1, access),
				asm.JNE.Reg(asm.R1, asm.R3, next))
		}
		if r.Major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.Major), next))
		}
		if r.Minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.Minor), next))
		}
		block = append(block, asm.Mov.Imm32(asm.R0, 1), asm.Return())
		block[0] = block[0].WithSymbol(deviceBlock(i))
		insns = append(insns, block...)
	}
	return append(insns, asm.Mov.Imm32(asm.R0, 0).WithSymbol(deviceBlock(len(rules))), asm.Return())
}

func deviceBlock(i int) string { return "rule-" + strconv.Itoa(i) }

func deviceType(t byte) int32 {
	if t == 'b' {
		return unix.BPF_DEVCG_DEV_BLOCK
	}
	return unix.BPF_DEVCG_DEV_CHAR
}

func deviceAccess(access string) int32 {
	var a int32
	for _, c := range access {
		switch c {
		case 'r':
			a |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			a |= unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			a |= unix.BPF_DEVCG_ACC_MKNOD
		}
	}
	return a
}

// loadDeviceFilter loads the program of rules into the kernel.
func loadDeviceFilter(rules []deviceRule) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "kiln_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: deviceFilter(rules),
		License:      deviceFilterLicense,
	})
	if err != nil {
		return nil, fmt.Errorf("load device filter: %w", err)
	}
	return prog, nil
}

// attachDeviceFilter confines the cgroup v2 directory dir to the devices
// rules allow: it loads their program and attaches it, with
// BPF_F_ALLOW_MULTI as runc does, so that the programs of the ancestors
// (systemd's, an outer container's) keep applying as well (every program
// must allow an access), and no program attached below can widen what this
// one allows. Programs attached to dir before (a cgroup made again after a
// failed removal) are detached once the new one is in place. The program
// lives as long as it stays attached: it goes with the directory.
func attachDeviceFilter(dir string, rules []deviceRule) error {
	prog, err := loadDeviceFilter(rules)
	if err != nil {
		return err
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach device filter: %w", err)
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old.Programs {
		if err := detachProgramID(fd, p.ID); err != nil {
			errs = append(errs, fmt.Errorf("detach old device filter %d from %s: %w", p.ID, dir, err))
		}
	}
	return errors.Join(errs...)
}

// detachProgramID detaches the device program id from the cgroup fd.
func detachProgramID(fd int, id ebpf.ProgramID) error {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return err
	}
	defer p.Close()
	return link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice})
}
