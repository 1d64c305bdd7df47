package seccomp

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// action returns the filter's return value for a profile action, with its
// errno (errnoRet, EPERM when unset) for SCMP_ACT_ERRNO and SCMP_ACT_TRACE.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with %s and %s, not %s", specs.ActErrno, specs.ActTrace, a)
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d is out of range", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("%s is not supported (no seccomp agent)", a)
	case "":
		return 0, fmt.Errorf("no action")
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// allows says whether a return value lets the syscall run (runc's
// isAllowAction: such profiles get no ENOSYS stub).
func allows(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		return true
	}
	return false
}

// filterFlags turns a profile's flags into SECCOMP_FILTER_FLAG_* bits.
func filterFlags(flags []specs.LinuxSeccompFlag) (uint, error) {
	var bits uint
	for _, f := range flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// Install always synchronizes all threads, as runc does.
		case specs.LinuxSeccompFlagLog:
			bits |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			bits |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			return 0, fmt.Errorf("%w: flags: %s needs seccomp user notification, which is not supported", ErrInvalid, f)
		default:
			return 0, fmt.Errorf("%w: flags: unknown flag %q", ErrInvalid, f)
		}
	}
	return bits, nil
}
