package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/internal/rootless"
)

// hostRegistryDir records, per bridge, the network kiln brought up on this
// host and its store root. Kernel state outlives a container (Network.Up),
// and so may outlive a store deleted without network prune (a test's or a
// benchmark's temporary root): the next bring-up of any network removes the
// bridges and rules of networks that are no longer up in their store. It is
// in /run (rootless, in the user's runtime directory), which goes with the
// kernel state at reboot.
func hostRegistryDir() string { return rootless.RuntimePath("bridges") }

type hostEntry struct {
	Root    string
	Network *Network
}

func hostEntryPath(bridge string) string { return filepath.Join(hostRegistryDir(), bridge+".json") }

// register records n as up for s.
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
// for networks their store no longer has up. The caller holds the host lock,
// under which every bring-up and take-down happens.
func (st *state) sweepOrphans() error {
	ents, err := os.ReadDir(hostRegistryDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
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
