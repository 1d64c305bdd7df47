package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/runner"
)

// NewNamespace creates a network namespace with lo up and returns it open:
// it lives as long as the file, or a process, holds it.
func NewNamespace() (f *os.File, err error) {
	err = runner.OnThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("create network namespace: %w", err)
		}
		if f, err = os.Open("/proc/thread-self/ns/net"); err != nil {
			return fmt.Errorf("create network namespace: %w", err)
		}
		if lo, err := netlink.LinkByName("lo"); err == nil {
			if err := netlink.LinkSetUp(lo); err != nil {
				f.Close()
				f = nil
				return fmt.Errorf("bring lo up: %w", err)
			}
		}
		return nil
	})
	return f, err
}

// AttachRequest attaches a container's network namespace to a network.
type AttachRequest struct {
	ContainerID   string
	ContainerName string
	Hostname      string
	Network       string // name or ID
	Aliases       []string
	HostsPath     string   // the container's /etc/hosts to keep up to date ("" for none)
	ExtraHosts    []string // its --add-host entries
	Holder        *Holder  // the process the endpoint lasts for, when not a container's (see Endpoint.Holder)
}

// Attach gives the namespace ns an interface on the network: a veth pair
// into the network's bridge (brought up with its first endpoint), the next
// free address, and the default route when ns has none yet.
func (s *Store) Attach(ns *os.File, req AttachRequest) (*Endpoint, *Network, error) {
	var ep *Endpoint
	var net_ *Network
	err := s.update(func(st *state) error {
		n, err := st.get(req.Network)
		if err != nil {
			return err
		}
		if n.Endpoints[req.ContainerID] != nil {
			return fmt.Errorf("container %s is already attached to network %s: %w", req.ContainerName, n.Name, ErrAttached)
		}
		broughtUp := false
		br, err := netlink.LinkByName(n.Bridge)
		if !n.Up || err != nil {
			// (Leftovers of deleted stores go first; they must not stop
			// this container.)
			_ = st.sweepOrphans()
			if err := st.bringUp(n); err != nil {
				return errors.Join(err, st.takeDown(n))
			}
			n.Up, broughtUp = true, true
			st.dirty[n] = true
			br = nil
		}
		e, err := st.attach(n, br, ns, req)
		if err != nil {
			if broughtUp && len(n.Endpoints) == 0 {
				err = errors.Join(err, st.takeDown(n))
			}
			return err
		}
		ep, net_ = e, n
		return st.writeHosts(req.ContainerID, n)
	})
	return ep, net_, err
}

// vethName is the host side of the container's veth pair on network:
// veth and 7 hex digits, as Docker names them.
func vethName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + networkID))
	return "veth" + hex.EncodeToString(sum[:])[:7]
}

// attach plugs the namespace ns into n's bridge, br when the caller looked
// it up already (else nil).
func (st *state) attach(n *Network, br netlink.Link, ns *os.File, req AttachRequest) (*Endpoint, error) {
	used := map[netip.Addr]bool{n.Gateway: true}
	for _, e := range n.Endpoints {
		used[e.IP] = true
	}
	ip, err := nextAddr(n.Subnet, used)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	if br == nil {
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("find bridge %s: %w", n.Bridge, err)
		}
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err != nil {
		return nil, fmt.Errorf("open container network namespace: %w", err)
	}
	defer h.Close()
	ifname, err := freeInterface(h)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		ContainerID: req.ContainerID, ContainerName: req.ContainerName, Hostname: req.Hostname,
		Aliases: req.Aliases, EndpointID: newID(), IP: ip, MAC: macFor(ip),
		HostVeth: vethName(req.ContainerID, n.ID), Interface: ifname,
		HostsPath: req.HostsPath, ExtraHosts: req.ExtraHosts, Attached: time.Now().UTC(),
		Holder: req.Holder,
	}
	if old, err := netlink.LinkByName(e.HostVeth); err == nil {
		_ = netlink.LinkDel(old) // left by a container that died unseen
	}
	mac, _ := net.ParseMAC(e.MAC)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex = e.HostVeth, br.Attrs().MTU, br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ifname, PeerHardwareAddr: mac,
		PeerNamespace: netlink.NsFd(int(ns.Fd())), PeerMTU: uint32(br.Attrs().MTU)}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth pair %s: %w", e.HostVeth, err)
	}
	fail := func(err error) (*Endpoint, error) {
		if l, lerr := netlink.LinkByName(e.HostVeth); lerr == nil {
			_ = netlink.LinkDel(l)
		}
		return nil, err
	}
	host, err := netlink.LinkByName(e.HostVeth)
	if err != nil {
		return fail(fmt.Errorf("find veth %s: %w", e.HostVeth, err))
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fail(fmt.Errorf("bring veth %s up: %w", e.HostVeth, err))
	}
	peer, err := h.LinkByName(ifname)
	if err != nil {
		return fail(fmt.Errorf("find %s in the container: %w", ifname, err))
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ip, n.Subnet.Bits())}); err != nil {
		return fail(fmt.Errorf("address %s: %w", ifname, err))
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fail(fmt.Errorf("bring %s up: %w", ifname, err))
	}
	if !n.Internal && !hasDefaultRoute(h) {
		gw := n.Gateway.As4()
		if err := h.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(gw[:])}); err != nil {
			return fail(fmt.Errorf("add default route: %w", err))
		}
	}
	if n.Endpoints == nil {
		n.Endpoints = map[string]*Endpoint{}
	}
	n.Endpoints[req.ContainerID] = e
	st.dirty[n] = true
	return e, nil
}

// freeInterface is the first ethN the namespace lacks.
func freeInterface(h *netlink.Handle) (string, error) {
	for i := 0; i < 1000; i++ {
		name := "eth" + strconv.Itoa(i)
		if _, err := h.LinkByName(name); err != nil {
			if _, ok := err.(netlink.LinkNotFoundError); ok {
				return name, nil
			}
			return "", fmt.Errorf("list container interfaces: %w", err)
		}
	}
	return "", errors.New("no free interface name in the container")
}

func hasDefaultRoute(h *netlink.Handle) bool {
	routes, err := dump(func() ([]netlink.Route, error) { return h.RouteList(nil, unix.AF_INET) })
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			return true
		}
	}
	return false
}

// Detach removes the container's endpoint on the network: its veth pair
// goes (and, the teardown delay after its last endpoint, the network's
// bridge and rules), its peers forget its name.
func (s *Store) Detach(containerID, network string) error {
	return s.update(func(st *state) error {
		n, err := st.get(network)
		if err != nil {
			return err
		}
		e := n.Endpoints[containerID]
		if e == nil {
			return fmt.Errorf("container %.12s is not connected to network %s: %w", containerID, n.Name, ErrNotAttached)
		}
		return st.detach(n, e, false)
	})
}

// Release detaches the container from every network; it is what a dead
// container's cleanup calls, and does nothing for a container without
// endpoints.
func (s *Store) Release(containerID string) error { return s.release(containerID, false) }

// ReleaseDying is Release for a container whose network namespace goes away
// with it (its monitor's last reference is about to be closed): the host
// ends of its veth pairs are only unplugged from their bridges, and the
// kernel deletes them with the namespace, which spares the caller the
// synchronous wait (an RCU grace period) of deleting a device.
func (s *Store) ReleaseDying(containerID string) error { return s.release(containerID, true) }

func (s *Store) release(containerID string, dying bool) error {
	nets, err := s.load()
	if err != nil {
		return err
	}
	found := false
	for _, n := range nets {
		found = found || n.Endpoints[containerID] != nil
	}
	if !found {
		return nil
	}
	return s.update(func(st *state) error {
		var errs []error
		for _, n := range st.nets {
			if e := n.Endpoints[containerID]; e != nil {
				if dying {
					errs = append(errs, unplug(e.HostVeth))
				}
				errs = append(errs, st.detach(n, e, dying))
			}
		}
		return errors.Join(errs...)
	})
}

// unplug takes a veth out of its bridge and down, for the kernel to delete
// with the peer's namespace (a new endpoint of the same name deletes it
// first if it is still there).
func unplug(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return fmt.Errorf("unplug veth %s: %w", name, err)
	}
	if err := netlink.LinkSetNoMaster(l); err != nil {
		return fmt.Errorf("unplug veth %s: %w", name, err)
	}
	return nil
}

// detach removes e, the endpoint of a container on n, and rewrites the
// /etc/hosts of its peers and, unless the container is dying (the next
// start's attach writes it anew, and a --rm container's files are going),
// its own.
func (st *state) detach(n *Network, e *Endpoint, dying bool) error {
	var errs []error
	if l, err := netlink.LinkByName(e.HostVeth); err == nil && l.Attrs().MasterIndex != 0 {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", e.HostVeth, err))
		}
	}
	delete(n.Endpoints, e.ContainerID)
	st.dirty[n] = true
	if len(n.Endpoints) == 0 && n.Up {
		// The bridge and its rules stay up a while for the next container
		// (Network.Up): a reaper takes them down if none comes.
		n.IdleSince, st.idled = time.Now().UTC(), true
	}
	errs = append(errs, st.writeHosts(e.ContainerID, n))
	if e.HostsPath != "" && !dying {
		if _, err := os.Stat(e.HostsPath); err == nil {
			errs = append(errs, st.writeHostsFor(e.ContainerID, e))
		}
	}
	return errors.Join(errs...)
}

// writeHosts rewrites the /etc/hosts of the container and of its peers on n.
func (st *state) writeHosts(containerID string, n *Network) error {
	var errs []error
	ids := []string{containerID}
	if !n.Default() {
		for id := range n.Endpoints {
			if id != containerID {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		if e := n.Endpoints[id]; e != nil && e.HostsPath != "" {
			errs = append(errs, st.writeHostsFor(id, e))
		}
	}
	return errors.Join(errs...)
}

// writeHostsFor writes a container's /etc/hosts (in place: it is
// bind-mounted): its own addresses, then its peers on user-defined networks.
func (st *state) writeHostsFor(containerID string, any *Endpoint) error {
	type own struct {
		n *Network
		e *Endpoint
	}
	var mine []own
	for _, n := range st.nets {
		if e := n.Endpoints[containerID]; e != nil {
			mine = append(mine, own{n, e})
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].e.Attached.Before(mine[j].e.Attached) })
	var entries []HostEntry
	for _, m := range mine {
		entries = append(entries, HostEntry{IP: m.e.IP, Names: dedupe([]string{m.e.Hostname})})
	}
	for _, m := range mine {
		if m.n.Default() {
			continue
		}
		peers := make([]*Endpoint, 0, len(m.n.Endpoints))
		for id, p := range m.n.Endpoints {
			if id != containerID {
				peers = append(peers, p)
			}
		}
		sort.Slice(peers, func(i, j int) bool { return peers[i].IP.Less(peers[j].IP) })
		for _, p := range peers {
			entries = append(entries, HostEntry{IP: p.IP, Names: p.Names()})
		}
	}
	f, err := os.OpenFile(any.HostsPath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("update hosts of %.12s: %w", containerID, err)
	}
	_, werr := f.Write(HostsFile(any.ExtraHosts, entries))
	return errors.Join(werr, f.Close())
}

// AttachSelf makes a network namespace with an interface on the network
// that lasts as long as the calling process (see Endpoint.Holder), under
// the endpoint ID id: the namespace a build's RUN steps share. release
// detaches it; if the process dies first, the next change to the store's
// networks does.
func (s *Store) AttachSelf(id, network string) (ns *os.File, release func() error, err error) {
	ns, ready, release, err := s.AttachSelfInBackground(id, network)
	if err != nil {
		return nil, nil, err
	}
	if err := ready(); err != nil {
		ns.Close()
		return nil, nil, err
	}
	return ns, release, nil
}

// AttachSelfInBackground is AttachSelf returning as soon as the namespace
// exists: processes may be started in it while it is attached (bridge,
// veth, rules: tens of milliseconds), but not use the network before ready
// returned nil. ready may be called more than once; release waits for the
// attachment, and does nothing if it failed. The caller closes ns after
// release.
func (s *Store) AttachSelfInBackground(id, network string) (ns *os.File, ready, release func() error, err error) {
	ns, err = NewNamespace()
	if err != nil {
		return nil, nil, nil, err
	}
	attached := make(chan error, 1)
	go func() {
		_, _, err := s.Attach(ns, AttachRequest{ContainerID: id, ContainerName: id, Hostname: id, Network: network, Holder: Self()})
		attached <- err
	}()
	ready = sync.OnceValue(func() error { return <-attached })
	release = func() error {
		if ready() != nil {
			return nil // never attached
		}
		return s.ReleaseDying(id)
	}
	return ns, ready, release, nil
}
