package network

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inNewNetns runs f on a thread of its own in a new network namespace, whose
// firewall tables start empty and go with it (the thread is never unlocked,
// so it ends with f): the host's rules are neither read nor touched.
func inNewNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace of its own")
	}
	done := make(chan bool)
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare a network namespace: %v", err)
			return
		}
		f()
	}()
	<-done
}

func saveOut(t *testing.T, bin string) string {
	out, err := exec.Command(bin + "-save").Output()
	if err != nil {
		t.Fatalf("%s-save: %v", bin, err)
	}
	return string(out)
}

// count is how many lines of out are line.
func count(out, line string) int {
	return len(slices.DeleteFunc(strings.Split(out, "\n"), func(l string) bool { return l != line }))
}

// TestIptablesUpDown: bringing networks up adds each rule once (again: no
// duplicate), in chains made when missing, without flushing another
// network's rules or touching the host's; bringing one down removes its
// rules only, and the chains and their jumps go with the last.
func TestIptablesUpDown(t *testing.T) {
	bin, err := lookBin("iptables")
	if err != nil {
		t.Skip("iptables is not installed")
	}
	fw := iptables{bin: bin}
	a := &Network{Bridge: "kiln-ta", Subnet: netip.MustParsePrefix("10.250.1.0/24")}
	b := &Network{Bridge: "kiln-tb", Subnet: netip.MustParsePrefix("10.250.2.0/24"), Internal: true}
	inNewNetns(t, func() {
		host := "-A FORWARD -i eth9 -j ACCEPT"
		if out, err := exec.Command(bin, "-w", "-A", "FORWARD", "-i", "eth9", "-j", "ACCEPT").CombinedOutput(); err != nil {
			t.Errorf("host rule: %v: %s", err, out)
			return
		}
		want := func(n *Network, times int) {
			t.Helper()
			out := saveOut(t, bin)
			for _, c := range ipChains(n) {
				for _, r := range c.rules {
					if got := count(out, ruleLine(c.chain, r...)); got != times {
						t.Errorf("%s: rule %q %d times, want %d:\n%s", n.Bridge, ruleLine(c.chain, r...), got, times, out)
					}
				}
			}
			if count(out, host) != 1 {
				t.Errorf("the host's rule is gone:\n%s", out)
			}
		}
		for _, n := range []*Network{a, b, a} {
			if err := fw.up(n); err != nil {
				t.Errorf("up %s: %v", n.Bridge, err)
				return
			}
		}
		want(a, 1)
		want(b, 1)
		out := saveOut(t, bin)
		for _, jump := range []string{"-A FORWARD -j " + forwardChain, "-A POSTROUTING -j " + natChain} {
			if count(out, jump) != 1 {
				t.Errorf("jump %q not there once:\n%s", jump, out)
			}
		}
		if err := fw.down(a); err != nil {
			t.Errorf("down %s: %v", a.Bridge, err)
		}
		want(a, 0)
		want(b, 1)
		out = saveOut(t, bin)
		if !strings.Contains(out, ":"+forwardChain+" ") || strings.Contains(out, ":"+natChain+" ") {
			t.Errorf("after the first network: want %s kept (the other's rules) and %s gone (empty):\n%s", forwardChain, natChain, out)
		}
		for _, n := range []*Network{b, b} {
			if err := fw.down(n); err != nil {
				t.Errorf("down %s: %v", n.Bridge, err)
			}
		}
		want(b, 0)
		out = saveOut(t, bin)
		if strings.Contains(out, "KILN") {
			t.Errorf("kiln's chains or jumps remain after the last network:\n%s", out)
		}
	})
}

// TestNftablesUpDown: a network's table is made exactly, and taken down
// once or twice without error.
func TestNftablesUpDown(t *testing.T) {
	bin, err := lookBin("nft")
	if err != nil {
		t.Skip("nft is not installed")
	}
	fw := nftables{bin: bin}
	a := &Network{Bridge: "kiln-ta", Subnet: netip.MustParsePrefix("10.250.1.0/24")}
	inNewNetns(t, func() {
		for range 2 {
			if err := fw.up(a); err != nil {
				t.Errorf("up: %v", err)
				return
			}
		}
		out, err := exec.Command(bin, "list", "table", "ip", fw.table(a)).CombinedOutput()
		if err != nil || strings.Count(string(out), "masquerade") != 1 {
			t.Errorf("table after up: %v\n%s", err, out)
		}
		for range 2 {
			if err := fw.down(a); err != nil {
				t.Errorf("down: %v", err)
			}
		}
		if out, err := exec.Command(bin, "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), fw.table(a)) {
			t.Errorf("tables after down: %v\n%s", err, out)
		}
	})
}
