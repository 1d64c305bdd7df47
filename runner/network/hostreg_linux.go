package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/kiln-build/kiln/internal/rootless"
)

// hostRegistryDir records, per bridge, the network kiln brought up on this
// host and its store root. Kernel state outlives a container (Network.Up),
// and so may outlive a store deleted without network prune (a test's or a
// benchmark's temporary root): the next bring-up of any network, and any
// network prune, removes the bridges and rules of networks that are no
// longer up in their store (see sweepOrphans). It is
// in /run (rootless, in the user's runtime directory), which goes with the
// kernel state at reboot.
func hostRegistryDir() string { return rootless.RuntimePath("bridges") }

type hostEntry struct {
	Root    string
	Network *Network
}

func hostEntryPath(bridge string) string { return filepath.Join(hostRegistryDir(), bridge+".json") }

// register records n as up for s: before its kernel state is made.
func (st *state) register(n *Network) error {
	if err := os.MkdirAll(hostRegistryDir(), 0o700); err != nil {
		return fmt.Errorf("record bridge %s: %w", n.Bridge, err)
	}
	data, err := json.Marshal(hostEntry{Root: st.s.root, Network: n})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(hostEntryPath(n.Bridge), data); err != nil {
		return fmt.Errorf("record bridge %s: %w", n.Bridge, err)
	}
	return nil
}

func unregister(bridge string) {
	os.Remove(hostEntryPath(bridge))
}

// sweepOrphans takes down the bridges (and rules) that the registry holds
// for networks their store no longer has up, and the idle kiln bridges it
// does not know. The caller holds the host lock, under which every bring-up
// and take-down happens.
func (st *state) sweepOrphans() error {
	ents, err := os.ReadDir(hostRegistryDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	errs := []error{st.sweepUnknown(ents)}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(hostRegistryDir(), e.Name()))
		if err != nil {
			continue
		}
		var h hostEntry
		if json.Unmarshal(data, &h) != nil || h.Network == nil {
			os.Remove(filepath.Join(hostRegistryDir(), e.Name()))
			continue
		}
		if stillUp(h) {
			continue
		}
		if err := st.bringDown(h.Network); err != nil {
			errs = append(errs, fmt.Errorf("remove the orphaned bridge %s: %w", h.Network.Bridge, err))
			continue
		}
		unregister(h.Network.Bridge)
	}
	return errors.Join(errs...)
}

// stillUp reports whether h's store still has its network up on that bridge.
func stillUp(h hostEntry) bool {
	data, err := os.ReadFile(filepath.Join(h.Root, "networks", h.Network.ID+".json"))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) // unreadable: leave it be
	}
	var n Network
	if json.Unmarshal(data, &n) != nil {
		return true
	}
	return n.Up && n.Bridge == h.Network.Bridge
}

// writeFileAtomic writes path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// sweepUnknown takes down the bridges named as kiln's (BridgePrefix) that
// no entry of the registry (ents) names and no device is plugged in: a
// bridge is registered, under the host lock, before it is made, so these
// are what a kiln killed midway, or older than the registry, left.
func (st *state) sweepUnknown(ents []os.DirEntry) error {
	links, err := linkList()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	known := map[string]bool{}
	for _, e := range ents {
		known[strings.TrimSuffix(e.Name(), ".json")] = true
	}
	plugged := map[int]bool{}
	for _, l := range links {
		plugged[l.Attrs().MasterIndex] = true
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if _, bridge := l.(*netlink.Bridge); !bridge || !strings.HasPrefix(name, BridgePrefix) || known[name] || plugged[l.Attrs().Index] {
			continue
		}
		if err := st.bringDown(&Network{Bridge: name}); err != nil {
			errs = append(errs, fmt.Errorf("remove the unknown bridge %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// linkList lists the devices.
func linkList() ([]netlink.Link, error) { return dump(netlink.LinkList) }

// dump runs a netlink dump again when other changes interrupted it (on a
// busy host they often do, and the list would be inconsistent).
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for try := 1; ; try++ {
		l, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 10 {
			return l, err
		}
	}
}
