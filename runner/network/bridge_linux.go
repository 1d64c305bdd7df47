package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bringUp makes n's kernel state: its bridge with the gateway address, and
// its firewall rules. An automatic subnet that now overlaps a route of the
// host (another store's bridge, a VPN...) moves to a free one first.
func (st *state) bringUp(n *Network) error {
	taken, err := st.taken(n)
	if err != nil {
		return err
	}
	if t, bad := overlaps(n.Subnet, taken); bad {
		if !n.AutoSubnet {
			return fmt.Errorf("network %s: subnet %s overlaps %s: %w", n.Name, n.Subnet, t, ErrOverlap)
		}
		if n.Subnet, err = pickSubnet(st.s.cfg.DefaultAddressPools, taken); err != nil {
			return err
		}
		n.Gateway = firstHost(n.Subnet)
		st.dirty[n] = true
	}
	// Recorded before anything is made: what a process killed midway
	// leaves, the next sweep finds (see sweepOrphans).
	_ = st.register(n)
	br, err := netlink.LinkByName(n.Bridge)
	if _, notFound := err.(netlink.LinkNotFoundError); notFound {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = n.Bridge, st.s.mtu()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		br, err = netlink.LinkByName(n.Bridge)
	}
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", n.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("network %s: device %s exists and is not a bridge", n.Name, n.Bridge)
	}
	addr := &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return fmt.Errorf("address bridge %s: %w", n.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", n.Bridge, err)
	}
	if !n.Internal {
		if err := enableForwarding(); err != nil {
			return err
		}
	}
	fw, err := st.s.firewall()
	if err != nil {
		return err
	}
	return fw.up(n)
}

// bringDown removes n's firewall rules and its bridge.
func (st *state) bringDown(n *Network) error {
	var errs []error
	if fw, err := st.s.firewall(); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, fw.down(n))
	}
	if br, err := netlink.LinkByName(n.Bridge); err == nil {
		if err := netlink.LinkDel(br); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

// takeDown removes n's kernel state, if any, and records it gone. What
// could not be removed stays registered, for the next sweep to retry.
func (st *state) takeDown(n *Network) error {
	err := st.bringDown(n)
	if err == nil {
		unregister(n.Bridge)
	}
	if n.Up {
		n.Up = false
		st.dirty[n] = true
	}
	return err
}

// linkExists reports whether the host has a network device named name.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// enableForwarding turns IPv4 forwarding on, as Docker does.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

// mtu is the configured MTU, else the MTU of the interface of the host's
// default route, else 1500.
func (s *Store) mtu() int {
	if s.cfg.MTU != 0 {
		return s.cfg.MTU
	}
	routes, err := dump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, unix.AF_INET) })
	if err == nil {
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().MTU >= 576 {
					return l.Attrs().MTU
				}
			}
		}
	}
	return 1500
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	b := a.As4()
	return &net.IPNet{IP: net.IP(b[:]), Mask: net.CIDRMask(bits, 32)}
}
