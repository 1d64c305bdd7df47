package seccomp

import (
	"sort"

	"golang.org/x/sys/unix"
)

//go:generate go run mktables.go

// The architectures kiln filters: the native ones of its amd64 and arm64
// builds and the 32-bit ABIs their kernels also run (Docker's archMap lists
// them as sub-architectures). Indexes into syscallNums.nums.
const (
	archX86_64 = iota
	archX86
	archAARCH64
	archARM
	numArches
)

// archInfo says how one architecture appears to a seccomp filter.
type archInfo struct {
	name  string // libseccomp's SCMP_ARCH_* name
	audit uint32 // seccomp_data.arch
}

var archInfos = [numArches]archInfo{
	archX86_64:  {"SCMP_ARCH_X86_64", unix.AUDIT_ARCH_X86_64},
	archX86:     {"SCMP_ARCH_X86", unix.AUDIT_ARCH_I386},
	archAARCH64: {"SCMP_ARCH_AARCH64", unix.AUDIT_ARCH_AARCH64},
	archARM:     {"SCMP_ARCH_ARM", unix.AUDIT_ARCH_ARM},
}

// syscallNums is one row of the generated syscallTable.
type syscallNums struct {
	name string
	nums [numArches]int32
}

// syscallNumber returns the number of the named syscall on arch, or false if
// arch has no such syscall (a profile's rule for it is then skipped, as
// libseccomp does).
func syscallNumber(name string, arch int) (uint32, bool) {
	i := sort.Search(len(syscallTable), func(i int) bool { return syscallTable[i].name >= name })
	if i == len(syscallTable) || syscallTable[i].name != name || syscallTable[i].nums[arch] < 0 {
		return 0, false
	}
	return uint32(syscallTable[i].nums[arch]), true
}
