//go:build linux && cgo

package runner

// #include "prestart_linux.h"
import "C" // prestart_linux.c: the constructor that starts a monitor's init

// cInitBuilt: cinit_linux.c's constructor runs the sandbox init when the
// parent sends it a plan (cplan_linux.go), and reads the config's first
// byte in any case.
const cInitBuilt = true

// constructorInit is the init the constructor started, once: its pid and
// the monitor's ends of its config, report, stdout and stderr pipes.
func constructorInit() (pid int, fds [4]int, ok bool) {
	if C.kiln_prestart_pid < 0 {
		return 0, fds, false
	}
	pid = int(C.kiln_prestart_pid)
	for i := range fds {
		fds[i] = int(C.kiln_prestart_fds[i])
	}
	C.kiln_prestart_pid = -1
	return pid, fds, true
}
