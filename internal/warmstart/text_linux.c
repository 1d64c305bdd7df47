//go:build linux && cgo

// The executable's code and read-only data mapped before the Go runtime
// starts: see doc.go.

#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// populate maps the read-only loaded segments of the first object
// dl_iterate_phdr reports, the executable.
static int populate(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size;
	(void)data;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || ph->p_memsz == 0)
			continue;
		uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
		madvise((void *)start, end - start, MADV_POPULATE_READ); // a hint
	}
	return 1; // the executable comes first: stop there
}

// warmstart_text_populated says whether the constructor mapped the code (for
// the tests).
int warmstart_text_populated;

// glibc passes a constructor the program's arguments.
__attribute__((constructor)) static void warmstart_text(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc > 0 && argv[0] && strcmp(argv[0], "kiln-runner-init") == 0)
		return;
	dl_iterate_phdr(populate, NULL);
	warmstart_text_populated = 1;
}
