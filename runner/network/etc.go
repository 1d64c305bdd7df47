package network

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// hostsBase is Docker's /etc/hosts head.
const hostsBase = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// HostEntry is one line of /etc/hosts.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// HostsFile is a container's /etc/hosts: Docker's head, then the --add-host
// entries ("NAME:IP", in order), then entries (the container itself first,
// then its peers on user-defined networks).
func HostsFile(extra []string, entries []HostEntry) []byte {
	var b bytes.Buffer
	b.WriteString(hostsBase)
	for _, e := range extra {
		name, ip, err := ParseExtraHost(e)
		if err == nil {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	for _, e := range entries {
		if e.IP.IsValid() && len(e.Names) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
		}
	}
	return b.Bytes()
}

// ParseExtraHost checks an --add-host value, NAME:IP (or NAME=IP; IPv6
// addresses may be bracketed) and returns its parts.
func ParseExtraHost(s string) (name, ip string, err error) {
	sep := strings.IndexAny(s, ":=")
	if sep <= 0 {
		return "", "", fmt.Errorf("invalid argument %q for \"--add-host\" flag: want NAME:IP", s)
	}
	name, ip = s[:sep], strings.Trim(s[sep+1:], "[]")
	a, perr := netip.ParseAddr(ip)
	if perr != nil || strings.ContainsAny(name, " \t\n#") {
		return "", "", fmt.Errorf("invalid argument %q for \"--add-host\" flag: invalid IP address %q", s, ip)
	}
	return name, a.String(), nil
}

// DNSOptions are a container's --dns, --dns-search and --dns-option.
type DNSOptions struct {
	Servers, Search, Options []string
}

// fallbackDNS are Docker's nameservers for a container whose host only
// lists loopback ones (which the container's own namespace cannot reach).
var fallbackDNS = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is a container's /etc/resolv.conf from the host's: each given
// kind of setting replaces the host's lines of that kind; without a network
// namespace of its own (hostNet) the container keeps loopback nameservers,
// otherwise they are dropped as Docker drops them.
func ResolvConf(host []byte, o DNSOptions, hostNet bool) ([]byte, error) {
	for _, s := range o.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--dns\" flag: not an IP address", s)
		}
	}
	var b bytes.Buffer
	var servers, search, options []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				a, err := netip.ParseAddr(f[1])
				if err == nil && a.IsLoopback() && !hostNet {
					continue
				}
				servers = append(servers, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(o.Servers) > 0 {
		servers = o.Servers
	} else if len(servers) == 0 && !hostNet && len(host) > 0 {
		servers = fallbackDNS
	}
	if len(o.Search) > 0 {
		search = o.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(o.Options) > 0 {
		options = o.Options
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), nil
}
