// Package hugeheap puts the Go heap of the program that links it in
// transparent huge pages, where the kernel offers them on request
// (/sys/kernel/mm/transparent_hugepage/enabled set to "madvise", the
// default of most distributions).
//
// Why: a kiln process is short-lived, and most of its start is spent
// faulting in the heap one 4 KiB page at a time. On a paravirtualised MMU,
// where each fault costs tens of microseconds, `kiln run --rm busybox true`
// took some 1,700 page faults over the client and its monitor, 60% of them
// the first writes to fresh heap pages; with the heap in 2 MiB pages, 600.
//
// How: linked with cgo, the Go runtime maps its memory through the C
// library's mmap (runtime/cgo's x_cgo_mmap, the hook that sanitizers
// intercept). This package's mmap stands in front of the C library's, calls
// the kernel itself, and marks the runtime's heap mappings MADV_HUGEPAGE as
// they are made, before anything has touched them: those are the fixed,
// private, anonymous, read-write mappings whose address and length are
// whole multiples of the runtime's 4 MiB heap chunk. Everything else passes
// through unchanged. The advice is a hint: where it fails, or where the
// kernel has huge pages off, nothing changes but the page size.
//
// GODEBUG=disablethp=1 turns it off again: the runtime then marks each heap
// mapping MADV_NOHUGEPAGE right after mapping it. A program built without
// cgo maps its memory directly, and this package does nothing in it.
//
// Import it for its effect, from a main package only:
//
//	import _ "github.com/kiln-build/kiln/internal/hugeheap"
package hugeheap
