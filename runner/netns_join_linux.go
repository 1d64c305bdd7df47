package runner

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// startInNetNS runs start (which forks the sandbox) with the calling OS
// thread in the network namespace ns, so that the child is born there, then
// puts the thread back. The caller has locked its goroutine to the thread.
// A nil ns just runs start.
func startInNetNS(ns *os.File, start func() error) error {
	if ns == nil {
		return start()
	}
	cur, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("join network namespace: %w", err)
	}
	defer cur.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join network namespace: %w", err)
	}
	err = start()
	if rerr := unix.Setns(int(cur.Fd()), unix.CLONE_NEWNET); rerr != nil {
		// The thread is in the wrong namespace for good: never let another
		// goroutine run on it (it ends with this goroutine).
		runtime.LockOSThread()
		return fmt.Errorf("leave network namespace: %w", rerr)
	}
	return err
}
