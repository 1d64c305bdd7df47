// Package warmstart spares the processes of the program that links it most
// of the page faults of their start. A kiln process is short-lived, and on a
// paravirtualised MMU, where each fault costs tens of microseconds, its
// faults were most of its start: `kiln run --rm busybox true` took some
// 1,700 over the client and its monitor, 60% of them first writes to fresh
// 4 KiB heap pages and a third first reads of the binary's code and
// read-only data. With this package, some 450.
//
// The heap goes in transparent huge pages (heap_linux.c), where the kernel
// offers them on request (/sys/kernel/mm/transparent_hugepage/enabled set to
// "madvise", most distributions' default). Linked with cgo, the Go runtime
// maps its memory through the C library's mmap (runtime/cgo's x_cgo_mmap,
// the hook that sanitizers intercept). This package's mmap stands in front
// of the C library's, calls the kernel itself, and marks the runtime's heap
// mappings MADV_HUGEPAGE as they are made, before anything has touched
// them: those are the fixed, private, anonymous, read-write mappings whose
// address and length are whole multiples of the runtime's 4 MiB heap chunk.
// Everything else passes through unchanged. GODEBUG=disablethp=1 turns it
// off again: the runtime then marks each heap mapping MADV_NOHUGEPAGE right
// after mapping it.
//
// The binary's code and read-only data are mapped in one go
// (text_linux.c): a constructor, run before the Go runtime starts, asks the
// kernel to map the executable's read-only segments at once
// (MADV_POPULATE_READ), instead of one fault per 64 KiB touched. It does not
// for a sandbox's init (argv[0] kiln-runner-init), which runs a few pages
// of C and executes the sandbox's command.
//
// Both are hints: where one fails, or the kernel has huge pages off, nothing
// changes but the count of faults. A program built without cgo maps its
// memory directly and has no constructors, and this package does nothing in
// it.
//
// Import it for its effect, from a main package only:
//
//	import _ "github.com/kiln-build/kiln/internal/warmstart"
package warmstart
