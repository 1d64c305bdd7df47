package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// hostLockPath serializes changes to the kernel state of kiln's networks
// (bridges, routes, firewall rules: see kernelNS) between every kiln process
// of the host (of the user, rootless), whatever its root.
func hostLockPath() string { return rootless.RuntimePath("network.lock") }

// Store holds the networks of one kiln store root.
type Store struct {
	root string
	cfg  Config
}

// Open returns the network store under the kiln store root, with the
// root's config file read.
func Open(root string) (*Store, error) {
	cfg, err := LoadConfig(root)
	if err != nil {
		return nil, err
	}
	return &Store{root: root, cfg: cfg}, nil
}

// Config is the store's networking configuration.
func (s *Store) Config() Config { return s.cfg }

func (s *Store) dir() string { return filepath.Join(s.root, "networks") }

// flock takes an exclusive lock on path (created if needed) and returns
// its release.
func flock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock networks: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock networks: %w", err)
	}
	return holdLock(f)
}

// holdLock takes an exclusive lock on the open lock file f and returns its
// release, which closes f; f is closed when the lock fails.
func holdLock(f *os.File) (func(), error) {
	if err := lockFile(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock networks: %w", err)
	}
	return func() { f.Close() }, nil
}

// state is every network of the store, loaded under the locks.
type state struct {
	s       *Store
	nets    []*Network
	dirty   map[*Network]bool
	deleted []*Network
	idled   bool // a network still up lost its last endpoint (see idle)
}

// update runs fn with the store's networks under the store's lock and the
// host's, on a thread in the namespace of kiln's kernel state, then saves
// what fn changed. The default network is created first when missing.
func (s *Store) update(fn func(st *state) error) error {
	return inKernelNS(func() error { return s.updateHere(fn) })
}

func (s *Store) updateHere(fn func(st *state) error) error {
	unlock, err := flock(filepath.Join(s.dir(), "lock"))
	if err != nil {
		return err
	}
	defer unlock()
	unlockHost, err := flock(hostLockPath())
	if err != nil {
		return err
	}
	defer unlockHost()
	nets, err := s.load()
	if err != nil {
		return err
	}
	st := &state{s: s, nets: nets, dirty: map[*Network]bool{}}
	if st.find(DefaultNetwork) == nil {
		if err := st.createDefault(); err != nil {
			return err
		}
	}
	ferr := st.releaseDeadHolders()
	ferr = errors.Join(ferr, fn(st))
	if st.idled {
		ferr = errors.Join(ferr, st.idle())
	}
	// Save even after a failure: kernel changes made before it are recorded.
	return errors.Join(ferr, st.save())
}

// save writes the networks st changed and removes those it deleted.
func (st *state) save() error {
	for n := range st.dirty {
		if err := writeJSONAtomic(filepath.Join(st.s.dir(), n.ID+".json"), n); err != nil {
			return err
		}
	}
	for _, n := range st.deleted {
		if err := os.Remove(filepath.Join(st.s.dir(), n.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
	}
	return nil
}

// load reads every network file; writes are atomic, so no lock is needed to
// read a consistent (if possibly old) view.
func (s *Store) load() ([]*Network, error) {
	ents, err := os.ReadDir(s.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []*Network
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir(), name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read network: %w", err)
		}
		n := &Network{}
		if err := json.Unmarshal(data, n); err != nil {
			return nil, fmt.Errorf("read network %s: %w", name, err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (st *state) find(ref string) *Network {
	for _, n := range st.nets {
		if n.Name == ref || n.ID == ref {
			return n
		}
	}
	var match *Network
	for _, n := range st.nets {
		if len(ref) >= 1 && strings.HasPrefix(n.ID, ref) {
			if match != nil {
				return nil
			}
			match = n
		}
	}
	return match
}

func (st *state) get(ref string) (*Network, error) {
	if n := st.find(ref); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("network %s not found: %w", ref, ErrNoSuchNetwork)
}

// taken is every subnet a new subnet must not overlap: the host's routes
// (but those of the bridge skip) and the store's networks (but skip).
func (st *state) taken(skip *Network) ([]netip.Prefix, error) {
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range routes {
		if skip == nil || r.Dev != skip.Bridge {
			out = append(out, r.Dst)
		}
	}
	for _, n := range st.nets {
		if n != skip && n.Subnet.IsValid() {
			out = append(out, n.Subnet)
		}
	}
	return out, nil
}

func (st *state) createDefault() error {
	n := &Network{Name: DefaultNetwork, ID: newID(), Created: time.Now().UTC(), Driver: "bridge", Bridge: st.s.cfg.Bridge}
	if st.s.cfg.BIP != "" {
		p, _ := netip.ParsePrefix(st.s.cfg.BIP)
		n.Subnet, n.Gateway = p.Masked(), p.Addr()
	} else {
		taken, err := st.taken(nil)
		if err != nil {
			return err
		}
		if n.Subnet, err = pickSubnet(st.s.cfg.DefaultAddressPools, taken); err != nil {
			return fmt.Errorf("create default network: %w", err)
		}
		n.Gateway, n.AutoSubnet = firstHost(n.Subnet), true
	}
	st.nets = append(st.nets, n)
	st.dirty[n] = true
	return nil
}

// CreateOptions are `network create`'s.
type CreateOptions struct {
	Name     string
	Subnet   string // CIDR; empty: the next free subnet of the pools
	Gateway  string // default: the subnet's first address
	Internal bool
	Labels   map[string]string
}

// Create makes a user-defined bridge network. Nothing of it exists in the
// kernel until a container attaches.
func (s *Store) Create(o CreateOptions) (*Network, error) {
	if !validName().MatchString(o.Name) {
		return nil, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", o.Name)
	}
	if o.Name == HostNetwork || o.Name == NoneNetwork || o.Name == DefaultNetwork {
		return nil, fmt.Errorf("network with name %s already exists: %w", o.Name, ErrNetworkExists)
	}
	var out *Network
	err := s.update(func(st *state) error {
		for _, n := range st.nets {
			if n.Name == o.Name {
				return fmt.Errorf("network with name %s already exists: %w", o.Name, ErrNetworkExists)
			}
		}
		n := &Network{Name: o.Name, ID: newID(), Created: time.Now().UTC(), Driver: "bridge",
			Internal: o.Internal, Labels: o.Labels}
		n.Bridge = BridgePrefix + "br-" + n.ID[:8]
		taken, err := st.taken(nil)
		if err != nil {
			return err
		}
		if o.Subnet != "" {
			p, err := netip.ParsePrefix(o.Subnet)
			if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
				return fmt.Errorf("invalid subnet %q: want an IPv4 CIDR with a prefix length of at most 30", o.Subnet)
			}
			n.Subnet = p.Masked()
			if t, bad := overlaps(n.Subnet, taken); bad {
				return fmt.Errorf("invalid pool request: %s overlaps %s: %w", n.Subnet, t, ErrOverlap)
			}
		} else {
			if o.Gateway != "" {
				return errors.New("--gateway needs --subnet")
			}
			if n.Subnet, err = pickSubnet(s.cfg.DefaultAddressPools, taken); err != nil {
				return err
			}
			n.AutoSubnet = true
		}
		n.Gateway = firstHost(n.Subnet)
		if o.Gateway != "" {
			gw, err := netip.ParseAddr(o.Gateway)
			if err != nil || !n.Subnet.Contains(gw) || gw == n.Subnet.Addr() {
				return fmt.Errorf("invalid gateway %q for subnet %s", o.Gateway, n.Subnet)
			}
			n.Gateway = gw
		}
		st.nets = append(st.nets, n)
		st.dirty[n] = true
		out = n
		return nil
	})
	return out, err
}

// Get finds a network by name, ID or unique ID prefix.
func (s *Store) Get(ref string) (*Network, error) {
	nets, err := s.List()
	if err != nil {
		return nil, err
	}
	st := &state{nets: nets}
	return st.get(ref)
}

// List returns every network of the store, oldest first; the default
// network is created on the way when missing.
func (s *Store) List() ([]*Network, error) {
	nets, err := s.load()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Name == DefaultNetwork {
			return nets, nil
		}
	}
	if err := s.update(func(*state) error { return nil }); err != nil {
		return nil, err
	}
	return s.load()
}

// Remove deletes a user-defined network that has no endpoint.
func (s *Store) Remove(ref string) error {
	return s.update(func(st *state) error {
		n, err := st.get(ref)
		if err != nil {
			return err
		}
		return st.remove(n)
	})
}

func (st *state) remove(n *Network) error {
	if n.Default() {
		return fmt.Errorf("bridge is a pre-defined network and cannot be removed: %w", ErrPredefined)
	}
	if len(n.Endpoints) > 0 {
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, ErrInUse)
	}
	if n.Up {
		if err := st.takeDown(n); err != nil {
			return err
		}
	}
	for i, m := range st.nets {
		if m == n {
			st.nets = append(st.nets[:i], st.nets[i+1:]...)
			break
		}
	}
	delete(st.dirty, n)
	st.deleted = append(st.deleted, n)
	return nil
}

// Prune removes every user-defined network without endpoints and returns
// their names; the default network, when it has no endpoint, loses its
// kernel state (bridge and firewall rules) until the next container needs it.
// The bridges and rules that stores deleted without a prune left on the host
// go too (see sweepOrphans), whatever store they were of.
func (s *Store) Prune() ([]string, error) { return s.PruneMatching(nil) }

// PruneMatching is Prune of the networks match accepts (all when nil).
func (s *Store) PruneMatching(match func(*Network) bool) ([]string, error) {
	var names []string
	err := s.update(func(st *state) (err error) {
		// Another store's leftovers must not fail this store's prune: what
		// cannot go stays registered, and the next sweep tries again.
		_ = st.sweepOrphans()
		names, err = st.prune(match)
		return err
	})
	return names, err
}

// prune is PruneMatching under the locks.
func (st *state) prune(match func(*Network) bool) ([]string, error) {
	var names []string
	for _, n := range append([]*Network{}, st.nets...) {
		if len(n.Endpoints) > 0 {
			continue
		}
		if n.Default() {
			if n.Up {
				if err := st.takeDown(n); err != nil {
					return names, err
				}
			}
			continue
		}
		if match != nil && !match(n) {
			continue
		}
		if err := st.remove(n); err != nil {
			return names, err
		}
		names = append(names, n.Name)
	}
	return names, nil
}

// Endpoints returns the container's endpoints, keyed by network name, with
// their networks.
func (s *Store) Endpoints(containerID string) (map[string]*Endpoint, map[string]*Network, error) {
	nets, err := s.load()
	if err != nil {
		return nil, nil, err
	}
	eps, byName := map[string]*Endpoint{}, map[string]*Network{}
	for _, n := range nets {
		if e := n.Endpoints[containerID]; e != nil {
			eps[n.Name], byName[n.Name] = e, n
		}
	}
	return eps, byName, nil
}

// writeJSONAtomic replaces path with v's JSON through a rename. The
// directory must exist (the store's lock is in it): a reaper must not make
// again the directory of a store deleted under it.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// hostRoutes reads the IPv4 routes of the calling thread's network
// namespace (see kernelNS).
func hostRoutes() ([]Route, error) {
	f, err := os.Open("/proc/thread-self/net/route")
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	defer f.Close()
	return parseRoutes(f)
}

// releaseDeadHolders detaches the endpoints whose holder process is gone
// (a build killed before it could release its network).
func (st *state) releaseDeadHolders() error {
	var errs []error
	for _, n := range st.nets {
		for _, e := range n.Endpoints {
			if e.Holder != nil && !e.Holder.Alive() {
				errs = append(errs, st.detach(n, e, false))
			}
		}
	}
	return errors.Join(errs...)
}
