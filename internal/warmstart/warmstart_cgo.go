//go:build linux && cgo

package warmstart

/*
#include <stdint.h>
#include <sys/mman.h>

extern int warmstart_text_populated;

// map_at calls mmap, the one in heap_linux.c, as the runtime does.
static uintptr_t map_at(uintptr_t addr, size_t len, int prot, int flags) {
	return (uintptr_t)mmap((void *)addr, len, prot, flags, -1, 0);
}
*/
import "C" // heap_linux.c: the mmap the Go runtime's x_cgo_mmap calls; text_linux.c: the constructor

// cMmap maps anonymous memory through the C library's mmap as the runtime
// does (the tests use it to show which mappings are advised).
func cMmap(addr uintptr, length uintptr, prot, flags int) (uintptr, error) {
	p, err := C.map_at(C.uintptr_t(addr), C.size_t(length), C.int(prot), C.int(flags))
	if p == C.uintptr_t(^uintptr(0)) { // MAP_FAILED
		return 0, err
	}
	return uintptr(p), nil
}

// textPopulated says whether this process's constructor mapped its code.
func textPopulated() bool { return C.warmstart_text_populated != 0 }
