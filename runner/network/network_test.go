package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRoutes(t *testing.T) {
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	routes, err := parseRoutes(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{{"docker0", netip.MustParsePrefix("172.17.0.0/16")}, {"eth0", netip.MustParsePrefix("192.0.2.0/24")}}
	if len(routes) != len(want) || routes[0] != want[0] || routes[1] != want[1] {
		t.Fatalf("routes = %v, want %v (the default route left out)", routes, want)
	}
}

func TestPickSubnet(t *testing.T) {
	for _, c := range []struct {
		taken []string
		want  string
	}{
		{nil, "172.17.0.0/16"},
		{[]string{"172.17.0.0/16"}, "172.18.0.0/16"},
		{[]string{"172.17.5.0/24", "172.18.0.0/15"}, "172.20.0.0/16"},
		{[]string{"172.16.0.0/12"}, "192.168.0.0/20"},
		{[]string{"172.16.0.0/12", "192.168.0.0/17"}, "192.168.128.0/20"},
	} {
		var taken []netip.Prefix
		for _, s := range c.taken {
			taken = append(taken, netip.MustParsePrefix(s))
		}
		got, err := pickSubnet(DefaultPools, taken)
		if err != nil || got.String() != c.want {
			t.Errorf("pickSubnet(%v) = %v, %v; want %s", c.taken, got, err, c.want)
		}
	}
	if _, err := pickSubnet(DefaultPools, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); !errors.Is(err, ErrNoSubnet) {
		t.Errorf("everything taken: err = %v, want ErrNoSubnet", err)
	}
}

func TestNextAddr(t *testing.T) {
	p := netip.MustParsePrefix("10.1.2.0/30")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.1.2.1"): true}
	a, err := nextAddr(p, used)
	if err != nil || a.String() != "10.1.2.2" {
		t.Fatalf("nextAddr = %v, %v", a, err)
	}
	used[a] = true
	if _, err := nextAddr(p, used); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("full /30: err = %v (network and broadcast addresses are never given)", err)
	}
	if m := macFor(netip.MustParseAddr("172.17.0.2")); m != "02:42:ac:11:00:02" {
		t.Errorf("macFor = %s", m)
	}
}

func TestParsePublish(t *testing.T) {
	for _, c := range []struct {
		spec string
		want PortMap
	}{
		{"80", PortMap{"80/tcp": {{}}}},
		{"8080:80", PortMap{"80/tcp": {{HostPort: "8080"}}}},
		{"127.0.0.1:8080:80/udp", PortMap{"80/udp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}},
		{"127.0.0.1::80", PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}},
		{"[::1]:8080:80", PortMap{"80/tcp": {{HostIP: "::1", HostPort: "8080"}}}},
		{"8000-8001:80-81", PortMap{"80/tcp": {{HostPort: "8000"}}, "81/tcp": {{HostPort: "8001"}}}},
	} {
		m := PortMap{}
		if err := ParsePublish(c.spec, m); err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if len(m) != len(c.want) {
			t.Errorf("%s = %v, want %v", c.spec, m, c.want)
		}
		for k, v := range c.want {
			if len(m[k]) != len(v) || m[k][0] != v[0] {
				t.Errorf("%s: %s = %v, want %v", c.spec, k, m[k], v)
			}
		}
	}
	for _, bad := range []string{"", "0", "x:80", "1.2.3.4.5:1:80", "80/icmp", "8000-8002:80-81", "1:2:3:4", "70000"} {
		if err := ParsePublish(bad, PortMap{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.org\noptions edns0\n")
	got, err := ResolvConf(host, DNSOptions{}, false)
	if err != nil || string(got) != "search example.org\nnameserver 192.0.2.53\noptions edns0\n" {
		t.Errorf("default = %q, %v (loopback nameservers dropped)", got, err)
	}
	got, _ = ResolvConf([]byte("nameserver 127.0.0.53\n"), DNSOptions{}, false)
	if string(got) != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Errorf("only loopback = %q", got)
	}
	got, _ = ResolvConf([]byte("nameserver 127.0.0.53\n"), DNSOptions{}, true)
	if string(got) != "nameserver 127.0.0.53\n" {
		t.Errorf("host network = %q", got)
	}
	got, _ = ResolvConf(host, DNSOptions{Servers: []string{"192.0.2.1"}, Search: []string{"a.test", "b.test"}, Options: []string{"ndots:2"}}, false)
	if string(got) != "search a.test b.test\nnameserver 192.0.2.1\noptions ndots:2\n" {
		t.Errorf("flags = %q", got)
	}
	if _, err := ResolvConf(host, DNSOptions{Servers: []string{"dns.example"}}, false); err == nil {
		t.Error("--dns with a name: no error")
	}
}

func TestHostsFile(t *testing.T) {
	got := string(HostsFile([]string{"db:192.0.2.9", "v6=[::2]"}, []HostEntry{
		{IP: netip.MustParseAddr("172.18.0.2"), Names: []string{"abc"}},
		{IP: netip.MustParseAddr("172.18.0.3"), Names: []string{"web", "www"}},
	}))
	if !strings.HasPrefix(got, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(got, "192.0.2.9\tdb\n::2\tv6\n172.18.0.2\tabc\n172.18.0.3\tweb www\n") {
		t.Errorf("hosts:\n%s", got)
	}
	for _, bad := range []string{"db", ":1.2.3.4", "db:nothing"} {
		if _, _, err := ParseExtraHost(bad); err == nil {
			t.Errorf("ParseExtraHost(%q): no error", bad)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := Config{}.withDefaults("/var/lib/kiln")
	if err != nil || c.Bridge != "kiln0" || len(c.DefaultAddressPools) == 0 {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
	other, _ := Config{}.withDefaults("/tmp/x")
	if other.Bridge == "kiln0" || !strings.HasPrefix(other.Bridge, BridgePrefix) || len(other.Bridge) > 15 {
		t.Errorf("bridge for another root = %q", other.Bridge)
	}
	for _, bad := range []Config{{Bridge: "docker0"}, {Bridge: "kiln0123456789012"}, {BIP: "10.0.0.1"}, {MTU: 10}, {Firewall: "pf"},
		{DefaultAddressPools: []Pool{{Base: "10.0.0.0/8", Size: 4}}}} {
		if _, err := bad.withDefaults("/tmp/x"); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestConfigTeardownDelay(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`{}`: DefaultTeardownDelay, `{"teardown-delay": "500ms"}`: 500 * time.Millisecond,
		`{"teardown-delay": 3}`: 3 * time.Second, `{"teardown-delay": 0}`: 0, `{"teardown-delay": "0s"}`: 0,
	} {
		var c Config
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		c, err := c.withDefaults("/tmp/x")
		if err != nil || c.teardownDelay() != want {
			t.Errorf("%s: delay %v, %v; want %v", in, c.teardownDelay(), err, want)
		}
	}
	for _, bad := range []string{`{"teardown-delay": "soon"}`, `{"teardown-delay": true}`} {
		var c Config
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	var c Config
	if err := json.Unmarshal([]byte(`{"teardown-delay": "-1s"}`), &c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.withDefaults("/tmp/x"); err == nil {
		t.Error("a negative teardown-delay: no error")
	}
}

// TestProxy forwards TCP and UDP through real sockets on loopback, to a
// "container" listening on 127.0.0.2.
func TestProxy(t *testing.T) {
	tcpL, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer tcpL.Close()
	go func() {
		for {
			c, err := tcpL.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	port := tcpL.Addr().(*net.TCPAddr).Port
	udpC, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: port})
	if err != nil {
		t.Skipf("UDP port %d taken on 127.0.0.2: %v", port, err)
	}
	defer udpC.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := udpC.ReadFromUDP(buf)
			if err != nil {
				return
			}
			udpC.WriteToUDP(bytes.ToUpper(buf[:n]), from)
		}
	}()
	key := func(proto string) string { return strconv.Itoa(port) + "/" + proto }
	p, err := Listen(PortMap{key("tcp"): {{HostIP: "127.0.0.1"}}, key("udp"): {{HostIP: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Serve(netip.MustParseAddr("127.0.0.2"))

	hostTCP := p.Ports[key("tcp")][0]
	c, err := net.DialTimeout("tcp", net.JoinHostPort(hostTCP.HostIP, hostTCP.HostPort), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello")
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
		t.Errorf("TCP echo through the proxy = %q, %v", got, err)
	}
	c.Close()

	hostUDP := p.Ports[key("udp")][0]
	u, err := net.Dial("udp", net.JoinHostPort(hostUDP.HostIP, hostUDP.HostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	u.Write([]byte("ping"))
	buf := make([]byte, 64)
	if n, err := u.Read(buf); err != nil || string(buf[:n]) != "PING" {
		t.Errorf("UDP through the proxy = %q, %v", buf[:n], err)
	}

	// The bound port is now taken: a second proxy on it fails clearly and
	// leaves nothing bound.
	if _, err := Listen(PortMap{key("tcp"): {hostTCP}}); !errors.Is(err, ErrPortAllocated) {
		t.Errorf("taken port: err = %v, want ErrPortAllocated", err)
	}
}
