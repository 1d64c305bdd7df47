package runner

import (
	"os"
	"runtime"
)

// initArg0 is the argv[0] that marks a re-execution as the sandbox init.
const initArg0 = "kiln-runner-init"

func init() {
	// The init sets per-thread credentials and then execs: keep it on the
	// main thread from the start.
	if IsInit() {
		runtime.LockOSThread()
	}
}

// IsInit reports whether this process was re-executed by Run as the sandbox
// init. main() (and TestMain) must check it first, before any other work:
//
//	if runner.IsInit() { runner.Init() }
func IsInit() bool {
	return len(os.Args) > 0 && os.Args[0] == initArg0
}
