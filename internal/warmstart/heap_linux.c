//go:build linux && cgo

// mmap in front of the C library's, for the Go runtime's heap: see doc.go.

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

// The Go runtime grows its heap in whole chunks of this size, at addresses
// aligned to it (runtime.pallocChunkBytes).
#define HEAP_CHUNK ((uintptr_t)4 << 20)

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
	long p = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (p == -1)
		return MAP_FAILED; // errno is the kernel's
	if (flags == (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED) && prot == (PROT_READ | PROT_WRITE) &&
	    len != 0 && (((uintptr_t)addr | len) & (HEAP_CHUNK - 1)) == 0) {
		int saved = errno;
		madvise((void *)p, len, MADV_HUGEPAGE); // a hint: its failure changes nothing
		errno = saved;
	}
	return (void *)p;
}
