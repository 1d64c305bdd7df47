package hugeheap

import (
	"syscall"
	"unsafe"
)

// chunk is what the runtime maps of the heap first and at each growth
// (pallocChunkBytes), aligned to it: the first chunk holds the first
// allocation.
const chunk = 4 << 20

// madvHugepage is MADV_HUGEPAGE (not in package syscall).
const madvHugepage = 14

var first *[64]byte

func init() {
	first = new([64]byte)
	start := uintptr(unsafe.Pointer(first)) &^ (chunk - 1)
	// Best effort: a kernel without transparent huge pages says EINVAL,
	// and the process goes on with small pages.
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, chunk, madvHugepage)
}
