package runner

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// OnThrowawayThread runs fn on an OS thread that ends with it, for fn to
// change the thread's namespaces for good, and returns fn's error. Never
// the main thread: it cannot end (the runtime would park it, holding the
// namespaces it joined), so a goroutine that lands there holds it while
// another does the work.
func OnThrowawayThread(fn func() error) error {
	var run func(out chan<- error)
	run = func(out chan<- error) {
		// Never unlocked: the thread exits with this goroutine.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			in := make(chan error, 1)
			go run(in)
			out <- <-in
			runtime.UnlockOSThread()
			return
		}
		out <- fn()
	}
	errc := make(chan error, 1)
	go run(errc)
	return <-errc
}

// startInNetNS runs start (which forks the sandbox) so that the child is
// born in the network namespace ns: on a throwaway thread that joins ns
// and lasts until release is called (the child's Pdeathsig is tied to the
// thread that forked it). The thread never goes back to the namespace it
// came from: rootless kiln could not rejoin the host's. A nil ns runs start
// on the calling thread, which the caller has locked.
func startInNetNS(ns *os.File, start func() error) (release func(), err error) {
	if ns == nil {
		return func() {}, start()
	}
	return startOnOwnThread(ns, start)
}

// startOnOwnThread runs start on a throwaway thread, in the network
// namespace ns when it is not nil, that lasts until release is called.
func startOnOwnThread(ns *os.File, start func() error) (release func(), err error) {
	started, done := make(chan error, 1), make(chan struct{})
	go OnThrowawayThread(func() error {
		if ns != nil {
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				started <- fmt.Errorf("join network namespace: %w", err)
				return nil
			}
		}
		err := start()
		started <- err
		if err == nil {
			<-done
		}
		return nil
	})
	if err := <-started; err != nil {
		return nil, err
	}
	return func() { close(done) }, nil
}
