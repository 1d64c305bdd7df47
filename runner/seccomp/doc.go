// Package seccomp gives kiln's sandboxes Docker's seccomp filtering: Docker's
// default profile (taken as data from github.com/moby/profiles/seccomp),
// profiles in Docker's JSON format (docker run --security-opt
// seccomp=FILE), and a compiler from a profile to a classic BPF program
// written in Go, so kiln stays one static binary without libseccomp.
//
// The lifecycle has two processes:
//
//  1. The parent picks a profile, Default() or Load(file contents) (Docker's
//     "unconfined" means no profile and no Filter at all), and calls
//     Compile(profile, caps) with the capabilities the sandboxed process will
//     hold. Compile keeps the rules Docker's profiles/seccomp would keep for
//     those capabilities, the native architecture and the running kernel,
//     and returns a Filter: plain data that encodes to JSON.
//  2. The sandbox init (kiln re-executed, receiving the Filter as JSON) calls
//     Filter.Install just before execve, while it still has CAP_SYS_ADMIN
//     when no_new_privs is off (as runc does); the filter then holds for the
//     process and everything it starts, and cannot be removed.
//
// Example:
//
//	f, err := seccomp.Compile(seccomp.Default(), caps) // parent
//	... pass f (JSON) to the init ...
//	runtime.LockOSThread()
//	if err := f.Install(); err != nil { ... }            // init, then drop privileges and execve
//
// What the filter does, as runc with libseccomp does for Docker: it checks
// seccomp_data.arch against the native architecture and the profile's
// sub-architectures it can run (x86_64 with i386, aarch64 with arm), each with
// its own syscall table, and kills the process for any other (libseccomp's
// default kills the thread); on x86_64 it
// refuses every x32 syscall (nr & 0x40000000) with EPERM, where libseccomp
// filters x32 calls by name (Debian's kernels boot with x32 off, and a filter
// that lets them through unchecked is the classic bypass); syscall numbers
// above the highest one the profile names get ENOSYS instead of the default
// errno, as runc's patchbpf stub does, so that programs fall back from
// syscalls newer than the profile; rules whose syscall the architecture does
// not have are skipped. For one syscall, rules with argument conditions are
// tried in profile order before its unconditional rule; rules whose action is
// the default one are dropped (runc's reading); two unconditional rules with
// different actions are an error (libseccomp refuses them too).
package seccomp
