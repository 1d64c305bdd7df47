package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/runner/network"
)

// The default bridge and its rules stay up after the last container (as
// docker0), so that starting a container changes no firewall rule; network
// prune takes them down, and a store deleted without it loses them at the
// next bring-up of any kiln network.
func TestNetworkStaysUpAndOrphansGo(t *testing.T) {
	a := newContainerEnv(t)
	brA := network.DefaultBridgeName(a.root)
	a.kiln("run", "--rm", "bb", "true")
	if !exists("/sys/class/net/" + brA) {
		t.Fatalf("bridge %s went with its last container", brA)
	}
	a.kiln("network", "prune", "-f")
	if exists("/sys/class/net/" + brA) {
		t.Fatalf("network prune left bridge %s", brA)
	}
	// A store that disappears with its bridge up.
	a.kiln("run", "--rm", "bb", "true")
	if err := os.RemoveAll(a.root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(a.root, 0o700); err != nil { // (for the env's cleanup)
		t.Fatal(err)
	}
	b := newContainerEnv(t)
	b.kiln("run", "--rm", "bb", "true")
	if exists("/sys/class/net/" + brA) {
		t.Errorf("the bridge %s of a deleted store is still there", brA)
	}
	for _, args := range [][]string{{"iptables", "-S"}, {"iptables", "-t", "nat", "-S"}} {
		if out, err := exec.Command(args[0], args[1:]...).Output(); err == nil && strings.Contains(string(out), brA) {
			t.Errorf("%v still names %s", args, brA)
		}
	}
}
