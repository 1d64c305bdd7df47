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
	done := make(chan struct{})
	var run func(out chan<- error)
	run = func(out chan<- error) {
		// Never unlocked: the thread exits with this goroutine. Not the
		// main thread, which cannot exit (it would stay in ns for good):
		// a goroutine that lands there holds it while another does the work.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			in := make(chan error, 1)
			go run(in)
			out <- <-in
			runtime.UnlockOSThread()
			return
		}
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			out <- fmt.Errorf("join network namespace: %w", err)
			return
		}
		err := start()
		out <- err
		if err == nil {
			<-done
		}
	}
	errc := make(chan error, 1)
	go run(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return func() { close(done) }, nil
}
