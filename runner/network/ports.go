package network

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// PortBinding is where a container port is published, as Docker's
// HostConfig.PortBindings and NetworkSettings.Ports show it. An empty
// HostIP is every address; an empty or "0" HostPort a random one.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// PortMap maps "PORT/PROTO" to its bindings.
type PortMap map[string][]PortBinding

// ParsePublish parses one -p value, [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]
// with ranges (START-END) of equal length on both sides, and adds its
// bindings to m.
func ParsePublish(spec string, m PortMap) error {
	bad := func(why string) error { return fmt.Errorf("invalid publish spec %q: %s", spec, why) }
	rest, proto, hasProto := strings.Cut(spec, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return bad("unknown protocol " + proto)
	}
	var hostIP, hostPort, ctrPort string
	if strings.HasPrefix(rest, "[") { // [v6]:hostport:port
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("unterminated IPv6 address")
		}
		hostIP, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		var ok bool
		if hostPort, ctrPort, ok = strings.Cut(rest, ":"); !ok {
			return bad("want [IP]:HOST_PORT:CONTAINER_PORT")
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrPort = parts[0]
		case 2:
			hostPort, ctrPort = parts[0], parts[1]
		case 3:
			hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
		default:
			return bad("too many colons")
		}
	}
	if hostIP != "" {
		a, err := netip.ParseAddr(hostIP)
		if err != nil {
			return bad("bad host address " + hostIP)
		}
		hostIP = a.String()
	}
	cLo, cHi, err := parsePortRange(ctrPort)
	if err != nil || cLo == 0 {
		return bad("bad container port " + ctrPort)
	}
	hLo, hHi := 0, 0
	if hostPort != "" {
		if hLo, hHi, err = parsePortRange(hostPort); err != nil {
			return bad("bad host port " + hostPort)
		}
		if hLo != 0 && hHi-hLo != cHi-cLo {
			return bad("host and container port ranges differ in length")
		}
	}
	for i := 0; i <= cHi-cLo; i++ {
		b := PortBinding{HostIP: hostIP}
		if hLo != 0 {
			b.HostPort = strconv.Itoa(hLo + i)
		}
		key := strconv.Itoa(cLo+i) + "/" + proto
		m[key] = append(m[key], b)
	}
	return nil
}

func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(b); err != nil || hi < lo {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return lo, hi, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// NormalizePort turns "80" into "80/tcp" and checks "PORT/PROTO".
func NormalizePort(p string) (string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := parsePort(port)
	if err != nil || n == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", fmt.Errorf("invalid port %q", p)
	}
	return strconv.Itoa(n) + "/" + proto, nil
}

// SplitPort splits "80/tcp" into 80 and "tcp".
func SplitPort(key string) (int, string, error) {
	k, err := NormalizePort(key)
	if err != nil {
		return 0, "", err
	}
	port, proto, _ := strings.Cut(k, "/")
	n, _ := strconv.Atoi(port)
	return n, proto, nil
}

// SortedPorts returns the keys of m in port order, tcp before udp.
func SortedPorts(m PortMap) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		pi, qi, _ := SplitPort(keys[i])
		pj, qj, _ := SplitPort(keys[j])
		if pi != pj {
			return pi < pj
		}
		return qi < qj
	})
	return keys
}
