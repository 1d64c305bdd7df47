// Package hugeheap makes a kiln process start faster: imported for its
// initialization only, it asks the kernel for transparent huge pages under
// the first chunk of the Go heap (MADV_HUGEPAGE; the host's setting is
// commonly "madvise"), as early in the process's initialization as a
// package can. Every kiln process (the command, a container's monitor, a
// sandbox's init) allocates its first megabytes during initialization;
// each 4 KiB page of them is a page fault, costly on virtual machines with
// paravirtualized page tables, where two 2 MiB pages cost two. On the
// machine measured, `kiln version` went from 700 page faults and 34-39 ms
// of CPU to 440-515 and 23-25 ms, for some 7 MB more resident memory, which
// a long-lived monitor gives back when it sheds (runner/container). Go's
// runtime does not ask for huge pages itself since Go 1.21.1.
package hugeheap
