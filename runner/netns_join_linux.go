package runner

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// startInNetNS runs start (which forks the sandbox) so that the child is
// born in the network namespace ns: on an OS thread of its own that joins
// ns and lasts until release is called (the child's Pdeathsig is tied to
// the thread that forked it), then ends. The thread never goes back to the
// namespace it came from: rootless kiln could not rejoin the host's. A nil
// ns runs start on the calling thread, which the caller has locked.
func startInNetNS(ns *os.File, start func() error) (release func(), err error) {
	if ns == nil {
		return func() {}, start()
	}
	errc, done := make(chan error, 1), make(chan struct{})
	go func() {
		// Never unlocked: the thread exits with this goroutine.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join network namespace: %w", err)
			return
		}
		err := start()
		errc <- err
		if err == nil {
			<-done
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return func() { close(done) }, nil
}
