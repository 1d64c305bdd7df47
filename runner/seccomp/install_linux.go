package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install applies the filter to the calling process, for good: to all its
// threads (SECCOMP_FILTER_FLAG_TSYNC, so a Go program need not know which
// thread will call execve; the Go runtime's threads are then filtered too,
// which Docker's profile allows for) and to everything they start. It needs
// either no_new_privs set or CAP_SYS_ADMIN in the caller's user namespace
// (EACCES otherwise): call it before dropping capabilities when no_new_privs
// is off, as runc does; the filter must then allow what the caller does
// until execve (capset, setgroups, setresuid, prctl, execve: Docker's profile
// does). The zero Filter installs nothing.
func (f Filter) Install() error { return f.install(unix.SECCOMP_FILTER_FLAG_TSYNC) }

// InstallThread is Install for the calling thread alone (no TSYNC): for a
// locked OS thread that starts the sandboxed process and is then thrown
// away, in a process whose other threads must stay unfiltered (kiln exec's
// monitor). The process it forks inherits the thread's filter.
func (f Filter) InstallThread() error { return f.install(0) }

func (f Filter) install(flags uint) error {
	if len(f.Program) == 0 {
		return nil
	}
	if len(f.Program) > maxInsns {
		return fmt.Errorf("install seccomp filter: %d instructions are more than the kernel's limit of %d", len(f.Program), maxInsns)
	}
	if f.Flags&^(unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) != 0 {
		return fmt.Errorf("install seccomp filter: unsupported flags %#x", f.Flags)
	}
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		uintptr(f.Flags|flags), uintptr(unsafe.Pointer(&prog)))
	switch {
	case errors.Is(errno, unix.EACCES):
		return fmt.Errorf("install seccomp filter: %w (needs no_new_privs or CAP_SYS_ADMIN)", errno)
	case errno != 0:
		return fmt.Errorf("install seccomp filter: %w", errno)
	case tid != 0:
		return fmt.Errorf("install seccomp filter: thread %d cannot be synchronized", tid)
	}
	return nil
}
