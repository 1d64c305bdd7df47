package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ErrNoSubnet: every subnet of the address pools is taken.
var ErrNoSubnet = errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")

// ErrPoolFull: the network has no free address left.
var ErrPoolFull = errors.New("no available IPv4 addresses on this network's address pools")

// Route is one IPv4 route of the host.
type Route struct {
	Dev string
	Dst netip.Prefix
}

// parseRoutes reads /proc/net/route: destinations and masks are
// little-endian hex. The default route is left out.
func parseRoutes(r io.Reader) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // the header
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := hexAddr(f[1])
		mask, err2 := hexAddr(f[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parse routes: bad line %q", sc.Text())
		}
		m := mask.As4()
		bits := 0
		for v := binary.BigEndian.Uint32(m[:]); v&(1<<31) != 0; v <<= 1 {
			bits++
		}
		if bits == 0 {
			continue
		}
		out = append(out, Route{Dev: f[0], Dst: netip.PrefixFrom(dst, bits).Masked()})
	}
	return out, sc.Err()
}

func hexAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), nil
}

// overlaps reports whether p overlaps any of taken.
func overlaps(p netip.Prefix, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, t := range taken {
		if p.Overlaps(t) {
			return t, true
		}
	}
	return netip.Prefix{}, false
}

// pickSubnet returns the first subnet of pools that overlaps none of taken.
func pickSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		base, err := netip.ParsePrefix(pool.Base)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("address pool %q: %w", pool.Base, err)
		}
		base = base.Masked()
		step := uint64(1) << (32 - pool.Size)
		start := u32(base.Addr())
		for off := uint64(0); off < uint64(1)<<(32-base.Bits()); off += step {
			p := netip.PrefixFrom(addr4(start+uint32(off)), pool.Size)
			if _, bad := overlaps(p, taken); !bad {
				return p, nil
			}
		}
	}
	return netip.Prefix{}, ErrNoSubnet
}

// nextAddr returns the lowest address of subnet that is neither its network
// nor broadcast address nor in used.
func nextAddr(subnet netip.Prefix, used map[netip.Addr]bool) (netip.Addr, error) {
	first := u32(subnet.Masked().Addr())
	size := uint64(1) << (32 - subnet.Bits())
	for off := uint64(1); off+1 < size; off++ {
		a := addr4(first + uint32(off))
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, ErrPoolFull
}

// firstHost is the first usable address of subnet: the default gateway.
func firstHost(subnet netip.Prefix) netip.Addr { return addr4(u32(subnet.Masked().Addr()) + 1) }

// macFor is Docker's MAC address for ip: 02:42 and the four address bytes.
func macFor(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
