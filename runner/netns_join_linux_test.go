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
	if left := threadsElsewhere(t, "net", 1); len(left) != 1 {
		t.Errorf("while a starter thread holds %s: %v", other, left)
	}
	release()
	if left := threadsElsewhere(t, "net", 0); len(left) > 0 {
		t.Errorf("threads outside the process's network namespace %s: %v", self, left)
	}
}

// threadsElsewhere lists the threads of the process that are not in its
// namespace of kind ("net", "mnt"), once at most want are. The Go runtime
// ends a thread some time after its locked goroutine returns (a loaded
// machine may take a while): it waits up to a minute for that.
func threadsElsewhere(t *testing.T, kind string, want int) []string {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var out []string
		for _, task := range mustGlob(t, "/proc/self/task/*/ns/"+kind) {
			if n, _ := os.Readlink(task); n != "" && n != self {
				out = append(out, task+" in "+n)
			}
		}
		if len(out) <= want || time.Now().After(deadline) {
			return out
		}
	}
}
