package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner/network"
)

// A network stays up for the teardown delay (2 s by default) after its last
// container leaves, then a reaper takes it down: no bridge, veth, address
// or firewall rule of it remains.

// netTrace is what a network leaves in the kernel while a container is on
// it: the bridge, the gateway address, the subnet, the host side of veths.
type netTrace struct {
	bridge, gateway, subnet string
	veths                   []string // ifindexes of the host ends
}

// trace runs a container that prints its eth0's iflink and records it.
func (e *env) trace(tr *netTrace, id string) {
	e.t.Helper()
	var iflink string
	for i := 0; i < 200 && iflink == ""; i++ {
		iflink = strings.TrimSpace(e.kiln("logs", id))
		time.Sleep(10 * time.Millisecond)
	}
	if iflink == "" {
		e.t.Fatalf("container %s printed no iflink", id)
	}
	tr.veths = append(tr.veths, iflink)
	tr.gateway = e.inspectF("{{.NetworkSettings.Gateway}}", id)
	tr.subnet = strings.TrimSpace(e.kiln("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "bridge"))
}

// left lists what of tr the kernel still has.
func (tr *netTrace) left() []string {
	var out []string
	if exists("/sys/class/net/" + tr.bridge) {
		out = append(out, "bridge "+tr.bridge)
	}
	ents, _ := os.ReadDir("/sys/class/net")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", d.Name(), "ifindex"))
		for _, v := range tr.veths {
			if err == nil && strings.TrimSpace(string(b)) == v {
				out = append(out, "device "+d.Name()+" (ifindex "+v+")")
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil && tr.gateway != "" {
		for _, a := range addrs {
			if strings.HasPrefix(a.String(), tr.gateway+"/") {
				out = append(out, "address "+a.String())
			}
		}
	}
	for _, args := range [][]string{{"iptables", "-S"}, {"iptables", "-t", "nat", "-S"}, {"nft", "list", "ruleset"}} {
		res, _ := exec.Command(args[0], args[1:]...).Output()
		for _, l := range strings.Split(string(res), "\n") {
			// kiln's rules all name its bridge (the MASQUERADE one as "! -o
			// BRIDGE"); a rule that only shares the subnet is someone else's
			// (a stopped dockerd leaves one for 172.17.0.0/16).
			if strings.Contains(l, tr.bridge) {
				out = append(out, strings.Join(args, " ")+": "+l)
			}
		}
	}
	return out
}

// awaitGone polls for up to a minute for tr to leave no trace.
func (e *env) awaitGone(tr *netTrace) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		left := tr.left()
		if len(left) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > time.Minute {
			e.t.Fatalf("a minute after the last container: left behind: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const printIflink = "cat /sys/class/net/eth0/iflink; sleep 3600"

// TestNetworkTeardownAfterRemove: the default bridge outlives its last
// container by the teardown delay, then goes with its rules.
func TestNetworkTeardownAfterRemove(t *testing.T) {
	e := newContainerEnv(t)
	tr := &netTrace{bridge: network.DefaultBridgeName(e.root)}
	id := strings.TrimSpace(e.kiln("run", "-d", "bb", "sh", "-c", printIflink))
	e.trace(tr, id)
	if len(tr.left()) < 3 { // bridge, veth, address (and rules)
		t.Fatalf("while the container runs, only %v", tr.left())
	}
	e.kiln("rm", "-f", id)
	if !exists("/sys/class/net/" + tr.bridge) {
		t.Errorf("bridge %s went at once with its last container", tr.bridge)
	}
	if d := e.awaitGone(tr); d < time.Second {
		t.Errorf("the network went %v after its last container, before the teardown delay", d)
	}
}

// TestNetworkTeardownMonitorKilled: kill -9 of the monitor, then any
// command that notices (ps), and the network goes the same way.
func TestNetworkTeardownMonitorKilled(t *testing.T) {
	e := newContainerEnv(t)
	tr := &netTrace{bridge: network.DefaultBridgeName(e.root)}
	id := strings.TrimSpace(e.kiln("run", "-d", "bb", "sh", "-c", printIflink))
	e.trace(tr, id)
	e.killMonitor(id)
	e.kiln("ps")
	e.awaitGone(tr)
	if s := e.inspectF("{{.State.Status}}", id); s != "exited" {
		t.Errorf("status after the monitor's death = %s", s)
	}
}

// TestNetworkTeardownDeferred: a container started within the delay finds
// the network up and keeps it (its traffic flows); the network goes only
// after that container leaves.
func TestNetworkTeardownDeferred(t *testing.T) {
	e := newContainerEnv(t)
	tr := &netTrace{bridge: network.DefaultBridgeName(e.root)}
	e.kiln("run", "--rm", "bb", "true")
	if !exists("/sys/class/net/" + tr.bridge) {
		t.Fatalf("bridge %s went at once with its last container", tr.bridge)
	}
	id := strings.TrimSpace(e.kiln("run", "-d", "bb", "sh", "-c", "cat /sys/class/net/eth0/iflink; nc -l -p 5000"))
	e.trace(tr, id)
	time.Sleep(2*network.DefaultTeardownDelay + 500*time.Millisecond) // past the first container's delay
	if !exists("/sys/class/net/" + tr.bridge) {
		t.Fatalf("bridge %s went with a container on it", tr.bridge)
	}
	ip := e.inspectF("{{.NetworkSettings.IPAddress}}", id)
	var conn net.Conn
	var err error
	for i := 0; i < 50; i++ {
		if conn, err = net.DialTimeout("tcp", net.JoinHostPort(ip, "5000"), time.Second); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect to the container: %v", err)
	}
	_, err = conn.Write([]byte("kept-up\n"))
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(e.kiln("logs", id), "kept-up"); {
		if time.Now().After(deadline) {
			t.Fatalf("the container did not receive: %q", e.kiln("logs", id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.kiln("rm", "-f", id)
	if !exists("/sys/class/net/" + tr.bridge) {
		t.Errorf("bridge %s went at once with its last container", tr.bridge)
	}
	e.awaitGone(tr)
}

// TestNetworkTeardownConfigAndOrphans: teardown-delay 0 in the config
// takes the network down with its last container; and a store deleted
// within the delay loses its network all the same.
func TestNetworkTeardownConfigAndOrphans(t *testing.T) {
	a := newContainerEnv(t)
	if err := os.WriteFile(filepath.Join(a.root, "config.json"), []byte(`{"teardown-delay": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	brA := network.DefaultBridgeName(a.root)
	a.kiln("run", "--rm", "bb", "true")
	if exists("/sys/class/net/" + brA) {
		t.Errorf("with teardown-delay 0, bridge %s outlived its last container", brA)
	}
	b := newContainerEnv(t)
	tr := &netTrace{bridge: network.DefaultBridgeName(b.root)}
	b.kiln("run", "--rm", "bb", "true")
	if !exists("/sys/class/net/" + tr.bridge) {
		t.Fatalf("bridge %s went at once with its last container", tr.bridge)
	}
	if err := os.RemoveAll(b.root); err != nil {
		t.Fatal(err)
	}
	b.awaitGone(tr)
	if exists(b.root) {
		t.Errorf("the deleted store %s was made again", b.root)
	}
	if err := os.Mkdir(b.root, 0o700); err != nil { // (for the env's cleanup)
		t.Fatal(err)
	}
}

// TestNetworkPruneSweepsOrphans: stores deleted without a prune, their
// reapers killed with them (as a killed test run leaves them), leave their
// bridges and firewall rules on the host, one of them not even in the
// host's registry of bridges (as a kiln killed between making its bridge
// and recording it did); network prune in another store takes them down,
// and leaves alone the network of a live store.
func TestNetworkPruneSweepsOrphans(t *testing.T) {
	// The live store's network comes up first: bringing up a network sweeps
	// orphans too, and the sweep under test is prune's.
	live := newContainerEnv(t)
	kept := &netTrace{bridge: network.DefaultBridgeName(live.root)}
	live.trace(kept, strings.TrimSpace(live.kiln("run", "-d", "bb", "sh", "-c", printIflink)))

	var gone []*env
	var orphans []*netTrace
	for range 2 {
		g := newContainerEnv(t)
		// The reaper would wait an hour: it is killed before the store goes.
		if err := os.WriteFile(filepath.Join(g.root, "config.json"), []byte(`{"teardown-delay": "1h"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		tr := &netTrace{bridge: network.DefaultBridgeName(g.root)}
		id := strings.TrimSpace(g.kiln("run", "-d", "bb", "sh", "-c", printIflink))
		g.trace(tr, id)
		g.kiln("rm", "-f", id)
		g.killReaper()
		gone, orphans = append(gone, g), append(orphans, tr)
	}
	if err := os.Remove(rootless.RuntimePath("bridges", orphans[1].bridge+".json")); err != nil {
		t.Fatal(err)
	}
	for i, g := range gone {
		if err := os.RemoveAll(g.root); err != nil {
			t.Fatal(err)
		}
		if !exists("/sys/class/net/" + orphans[i].bridge) {
			// (Another kiln of the host that brought a network up may have swept it first.)
			t.Logf("bridge %s is gone already", orphans[i].bridge)
		}
		if err := os.Mkdir(g.root, 0o700); err != nil { // (for the env's cleanup)
			t.Fatal(err)
		}
	}

	before := kept.left()
	live.kiln("network", "prune", "-f")
	for i, tr := range orphans {
		// (Its gateway address, once free, may be another store's by now.)
		if left := slices.DeleteFunc(tr.left(), func(l string) bool { return strings.HasPrefix(l, "address ") }); len(left) > 0 {
			_, regErr := os.Stat(rootless.RuntimePath("bridges", tr.bridge+".json"))
			ports, _ := exec.Command("bridge", "link").CombinedOutput()
			t.Errorf("after network prune, deleted store %d's network left: %v\nregistered: %v\nbridge link:\n%s", i, left, regErr == nil, ports)
		}
	}
	if after := kept.left(); !slices.Equal(after, before) {
		t.Errorf("network prune changed a live store's network: before %v, after %v", before, after)
	}
}

// killReaper waits for the store's network reaper (the last container's
// detach starts it) and kills it.
func (e *env) killReaper() {
	e.t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if data, err := os.ReadFile(p); err == nil && string(data) == "kiln-network-reaper\x00"+e.root+"\x00" {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					e.t.Fatalf("kill the network reaper %d: %v", pid, err)
				}
				return
			}
		}
	}
	e.t.Fatalf("no network reaper of %s came", e.root)
}
