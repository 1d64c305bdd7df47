//go:build linux && cgo

package container

import "unsafe"

// #include <stdlib.h>
// #include "standby_linux.h"
import "C" // standby_linux.c: the constructor that starts run's standby monitor

// constructorStandby is the standby monitor the constructor started, once:
// its pid, the client's ends of its status pipe, attach socket and stdin
// pipe, and the store root and network mode it was started for.
func constructorStandby() (pid int, fds [3]int, root, net string, ok bool) {
	if C.kiln_standby_pid < 0 {
		return 0, fds, "", "", false
	}
	pid = int(C.kiln_standby_pid)
	for i := range fds {
		fds[i] = int(C.kiln_standby_fds[i])
	}
	root, net = C.GoString(&C.kiln_standby_root[0]), C.GoString(&C.kiln_standby_net[0])
	C.kiln_standby_pid = -1
	return pid, fds, root, net, true
}

// EarlyStandbyFlag is how the constructor that starts run's standby monitor
// before the Go runtime (standby_linux.c) reads the flag name ("--env",
// "-e") of `kiln run`: as one that takes a value, as a boolean it skips, or
// as one that leaves the run to the monitor Go starts. A flag it misreads
// costs that early start, never a behaviour (NewStandby compares), so the
// tests hold its table to run's flags.
func EarlyStandbyFlag(name string) StandbyFlag {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return StandbyFlag(C.kiln_standby_flag(cs))
}
