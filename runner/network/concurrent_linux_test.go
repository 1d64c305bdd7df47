package network

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConcurrentStores: stores that bring their networks up and down at
// the same time, as the kiln processes of parallel tests do, change the
// same firewall chains and the same routing table. Each change is made
// from what it reads (iptables-save, the routes) and must hold the host
// lock until it is applied, or one transaction undoes another's rules or
// two bridges get one subnet. At the end every network is up exactly once:
// its bridge, a subnet of its own, each of its rules once; once all are
// down again nothing of kiln's is left.
func TestConcurrentStores(t *testing.T) {
	bin, err := lookBin("iptables")
	if err != nil {
		t.Skip("iptables is not installed")
	}
	inNewNetns(t, func() {
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		const stores, rounds = 4, 6
		var ss []*Store
		for range stores {
			s, err := Open(t.TempDir())
			if err == nil {
				s.cfg.Firewall = "iptables"
				_, err = s.Create(CreateOptions{Name: "n"})
			}
			if err != nil {
				t.Error(err)
				return
			}
			ss = append(ss, s)
		}
		// each runs change on every store at once, each store from a thread
		// of its own in this namespace.
		each := func(change func(st *state, n *Network) error) {
			var wg sync.WaitGroup
			errs := make([]error, len(ss))
			for i, s := range ss {
				wg.Add(1)
				go func() {
					defer wg.Done()
					runtime.LockOSThread() // never unlocked: the thread ends with it
					if errs[i] = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); errs[i] != nil {
						return
					}
					errs[i] = s.update(func(st *state) error {
						n, err := st.get("n")
						if err != nil {
							return err
						}
						return change(st, n)
					})
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Error(err)
			}
		}
		// As Attach and the reaper do: the host's registry of bridges knows
		// the network up while it is (another kiln's sweep leaves it be).
		up := func(st *state, n *Network) error {
			n.Up, st.dirty[n] = true, true
			return st.bringUp(n)
		}
		down := func(st *state, n *Network) error { return st.takeDown(n) }
		for range rounds {
			each(up)
			each(down)
		}
		each(up)

		out := saveOut(t, bin)
		subnets := map[netip.Prefix]string{}
		for _, s := range ss {
			n, err := s.Get("n")
			if err != nil {
				t.Error(err)
				return
			}
			if !linkExists(n.Bridge) {
				t.Errorf("bridge %s is missing", n.Bridge)
			}
			if other, dup := subnets[n.Subnet]; dup {
				t.Errorf("bridges %s and %s share subnet %s", other, n.Bridge, n.Subnet)
			}
			subnets[n.Subnet] = n.Bridge
			for _, c := range ipChains(n) {
				for _, r := range c.rules {
					if got := count(out, ruleLine(c.chain, r...)); got != 1 {
						t.Errorf("rule %q %d times, want once:\n%s", ruleLine(c.chain, r...), got, out)
					}
				}
			}
		}
		each(down)
		if out := saveOut(t, bin); strings.Contains(out, "KILN") {
			t.Errorf("kiln's chains or rules remain after every network went down:\n%s", out)
		}
		for _, s := range ss {
			if n, err := s.Get("n"); err == nil && linkExists(n.Bridge) {
				t.Errorf("bridge %s remains", n.Bridge)
			}
		}
	})
}
