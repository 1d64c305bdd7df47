package runner

import (
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestThrowawayThreadNetNS: threads that joined another network namespace
// (OnThrowawayThread, startInNetNS), many at once, are there while they
// work and gone after; the process's other threads, on which sockets,
// netlink requests and firewall tools are made, never leave its own.
func TestThrowawayThreadNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces of its own")
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var ns *os.File
	var other string // its name
	if err := OnThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		other, _ = os.Readlink("/proc/thread-self/ns/net")
		ns, err = os.Open("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// elsewhere lists the threads of the process outside its namespace.
	elsewhere := func() []string {
		var out []string
		for _, task := range mustGlob(t, "/proc/self/task/*/ns/net") {
			if n, _ := os.Readlink(task); n != "" && n != self {
				out = append(out, task+" in "+n)
			}
		}
		return out
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for range 32 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := OnThrowawayThread(func() error {
				if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
					return err
				}
				if n, _ := os.Readlink("/proc/thread-self/ns/net"); n != other {
					mu.Lock()
					bad = append(bad, "throwaway thread in "+n)
					mu.Unlock()
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
		go func() { // meanwhile, an ordinary goroutine
			defer wg.Done()
			if n, _ := os.Readlink("/proc/thread-self/ns/net"); n != self {
				mu.Lock()
				bad = append(bad, "goroutine on a thread in "+n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%v (process in %s, joined %s)", bad, self, other)
	}

	// A sandbox's starter thread stays in the namespace until released.
	release, err := startInNetNS(ns, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if left := elsewhere(); len(left) != 1 {
		t.Errorf("while a starter thread holds %s: %v", other, left)
	}
	release()

	// The Go runtime ends a thread once its locked goroutine returns,
	// which may take a moment on a loaded machine: wait for that.
	left := elsewhere()
	for deadline := time.Now().Add(time.Minute); len(left) > 0 && time.Now().Before(deadline); left = elsewhere() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("threads outside the process's network namespace %s: %v", self, left)
	}
}
