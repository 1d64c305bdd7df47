package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runner/network"
)

// newNetEnv is a container env that, after the test, removes its containers
// and networks and checks that nothing of them is left in the kernel: no
// bridge of the store, no veth named by the test, no firewall rule.
func newNetEnv(t *testing.T) (*env, *[]string) {
	t.Helper()
	e := newContainerEnv(t)
	links := &[]string{network.DefaultBridgeName(e.root)}
	t.Cleanup(func() {
		if ids := strings.Fields(e.run("", "ps", "-aq", "--no-trunc").stdout); len(ids) > 0 {
			e.run("", append([]string{"rm", "-f", "-v"}, ids...)...)
		}
		e.run("", "network", "prune", "-f")
		e.assertNoLinks(*links)
	})
	return e, links
}

// assertNoLinks fails if a device or a firewall rule names any of links.
func (e *env) assertNoLinks(links []string) {
	e.t.Helper()
	var left []string
	for _, l := range links {
		if exists("/sys/class/net/" + l) {
			left = append(left, "device "+l)
		}
	}
	for _, args := range [][]string{{"iptables", "-S"}, {"iptables", "-t", "nat", "-S"}, {"nft", "list", "ruleset"}} {
		out, _ := exec.Command(args[0], args[1:]...).Output()
		for _, l := range links {
			if strings.Contains(string(out), l) {
				left = append(left, strings.Join(args, " ")+" mentions "+l)
			}
		}
	}
	if len(left) > 0 {
		e.t.Errorf("left behind: %v", left)
	}
}

// netState is what a failed network test shows: the container's sockets,
// addresses and neighbours as it sees them, and the host's kiln bridges,
// ports, routes and firewall rules (with their packet counters).
func (e *env) netState(ctr string) string {
	e.t.Helper()
	var b strings.Builder
	r := e.run("", "exec", ctr, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6; ip addr; ip route; ip neigh; "+
		"echo rx $(cat /sys/class/net/eth0/statistics/rx_packets) tx $(cat /sys/class/net/eth0/statistics/tx_packets)")
	fmt.Fprintf(&b, "container %.12s (exit %d, %s):\n%s%s", ctr, r.code, e.inspectF("{{.State.Status}}", ctr), r.stdout, r.stderr)
	fmt.Fprintf(&b, "networks:\n%s", e.run("", "network", "inspect", "bridge").stdout)
	for _, args := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"bridge", "link"}, {"iptables-save", "-c"}} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "host %s (%v):\n", strings.Join(args, " "), err)
		for _, l := range strings.SplitAfter(string(out), "\n") {
			if args[0] != "iptables-save" || strings.Contains(l, "KILN") || strings.HasPrefix(l, "*") {
				b.WriteString(l)
			}
		}
	}
	return b.String()
}

// retry runs kiln until it succeeds (a server in another container may
// not listen yet) and returns the last result.
func (e *env) retry(args ...string) result {
	e.t.Helper()
	var r result
	for i := 0; i < 50; i++ {
		if r = e.run("", args...); r.code == 0 {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

func TestNetworkBridgeTCP(t *testing.T) {
	e, _ := newNetEnv(t)
	// busybox nc half-closes its connection as soon as its stdin ends: a
	// server with stdin /dev/null would send its FIN right after accepting,
	// and a client that reads it before its own stdin has the line (a busy
	// machine runs the echo late) exits 0 without having sent anything. The
	// server's stdin stays open instead: it closes only once the client has,
	// after its line, so the client's exit 0 means the server read it.
	srv := strings.TrimSpace(e.kiln("run", "-d", "--name", "srv", "bb", "sh", "-c", "sleep 3600 | nc -l -p 5000"))
	ip := e.inspectF("{{.NetworkSettings.IPAddress}}", srv)
	gw := e.inspectF("{{.NetworkSettings.Gateway}}", srv)
	if !strings.HasPrefix(ip, strings.TrimSuffix(gw, ".1")) || ip == gw {
		t.Fatalf("IPAddress %q, Gateway %q", ip, gw)
	}
	if mac := e.inspectF("{{.NetworkSettings.Networks.bridge.MacAddress}}", srv); !strings.HasPrefix(mac, "02:42:") {
		t.Errorf("MacAddress = %q", mac)
	}
	client := e.retry("run", "--rm", "bb", "sh", "-c", "ip -o addr show eth0; ip route; echo hello-over-tcp | nc -w 2 "+ip+" 5000")
	if client.code != 0 {
		t.Fatalf("client: exit %d: %s\n%s", client.code, client.stderr, e.netState(srv))
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(e.kiln("logs", srv), "hello-over-tcp") {
		if time.Now().After(deadline) {
			t.Fatalf("server logs: %q\nclient: stdout %q, stderr %q\n%s", e.kiln("logs", srv), client.stdout, client.stderr, e.netState(srv))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The routes and the default gateway inside, and the veth pair from
	// the host: the container's eth0 is the peer of the host's vethXXX.
	out := e.kiln("run", "--rm", "bb", "sh", "-c", "ip route; cat /sys/class/net/eth0/iflink")
	if !strings.Contains(out, "default via "+gw) {
		t.Errorf("routes:\n%s", out)
	}
}

// TestNetworkUDP: a container sends a UDP datagram (busybox tftp) to the
// test on the bridge's address, which answers it; the reply comes back.
func TestNetworkUDP(t *testing.T) {
	e, _ := newNetEnv(t)
	keep := strings.TrimSpace(e.kiln("run", "-d", "bb", "sleep", "3600")) // keeps the bridge up
	gw := e.inspectF("{{.NetworkSettings.Gateway}}", keep)
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	go func() {
		// A one-block TFTP server: RRQ in, DATA block 1 out, ACK in.
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n > 2 && buf[1] == 1 {
				pc.WriteTo(append([]byte{0, 3, 0, 1}, "udp-reply\n"...), from)
			}
		}
	}()
	r := e.run("", "run", "--rm", "bb", "tftp", "-g", "-r", "f", "-l", "/dev/stdout", gw, strconv.Itoa(port))
	if r.code != 0 || !strings.Contains(r.stdout, "udp-reply") {
		t.Fatalf("tftp over UDP: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestNetworkPublishHTTP(t *testing.T) {
	e, _ := newNetEnv(t)
	id := strings.TrimSpace(e.kiln("run", "-d", "-p", "127.0.0.1::80", "bb", "sh", "-c",
		"mkdir /www && echo hello-from-httpd > /www/index.html && httpd -f -p 80 -h /www"))
	addr := strings.TrimSpace(e.kiln("port", id, "80"))
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("port = %q", addr)
	}
	if out := e.kiln("port", id); out != "80/tcp -> "+addr+"\n" {
		t.Errorf("port = %q", out)
	}
	if got := e.inspectF(`{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, id); !strings.HasSuffix(addr, ":"+got) {
		t.Errorf("inspect Ports = %q, port says %q", got, addr)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var body []byte
	for i := 0; ; i++ {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 50 {
			t.Fatalf("GET: %v %q", err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(body) != "hello-from-httpd\n" {
		t.Errorf("body = %q", body)
	}

	// The same host port again: a clear error at run, nothing left.
	_, hostPort, _ := net.SplitHostPort(addr)
	r := e.run("", "run", "--rm", "-p", "127.0.0.1:"+hostPort+":80", "bb", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "port is already allocated") {
		t.Errorf("taken port: exit %d, stderr %q", r.code, r.stderr)
	}
	// A port something else holds.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	r = e.run("", "run", "-d", "--name", "late", "-p", "127.0.0.1:"+taken+":80", "bb", "sleep", "3600")
	if r.code != 125 || !strings.Contains(r.stderr, "127.0.0.1:"+taken) {
		t.Errorf("port held by another process: exit %d, stderr %q", r.code, r.stderr)
	}
	if st := e.inspectF("{{.State.Status}}", "late"); st != "exited" {
		t.Errorf("state after the failed start = %s", st)
	}
}

func TestNetworkNone(t *testing.T) {
	e, _ := newNetEnv(t)
	out := e.kiln("run", "--rm", "--network", "none", "bb", "sh", "-c", "ls /sys/class/net")
	if strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Errorf("--network none: interfaces %q", out)
	}
	if exists("/sys/class/net/" + network.DefaultBridgeName(e.root)) {
		t.Error("--network none brought the default bridge up")
	}
	// host shares the host's interfaces.
	out = e.kiln("run", "--rm", "--network", "host", "bb", "ls", "/sys/class/net")
	if !strings.Contains(out, "lo") || len(strings.Fields(out)) < 2 {
		t.Errorf("--network host: interfaces %q", out)
	}
}

func TestNetworkDNSFlags(t *testing.T) {
	e, _ := newNetEnv(t)
	out := e.kiln("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.test", "--dns-option", "ndots:3",
		"--add-host", "db:192.0.2.9", "--hostname", "myhost", "bb", "sh", "-c", "cat /etc/resolv.conf /etc/hosts; hostname")
	for _, want := range []string{"nameserver 192.0.2.53\n", "search corp.test\n", "options ndots:3\n", "192.0.2.9\tdb\n", "\tmyhost\n", "myhost\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if r := e.run("", "run", "--rm", "--add-host", "nocolon", "bb", "true"); r.code != 125 {
		t.Errorf("bad --add-host: exit %d", r.code)
	}
}

// TestUserNetworks: names and aliases resolve on a user-defined network;
// a container on another network cannot reach them.
func TestUserNetworks(t *testing.T) {
	e, links := newNetEnv(t)
	e.kiln("network", "create", "front")
	e.kiln("network", "create", "--subnet", "10.213.7.0/24", "back")
	for _, n := range []string{"front", "back"} {
		*links = append(*links, e.inspectNet(n, `{{index .Options "com.docker.network.bridge.name"}}`))
	}
	if sub := e.inspectNet("back", "{{(index .IPAM.Config 0).Subnet}}"); sub != "10.213.7.0/24" {
		t.Errorf("back subnet = %q", sub)
	}
	if r := e.run("", "network", "create", "--subnet", "10.213.7.128/25", "clash"); r.code == 0 {
		t.Error("overlapping subnet accepted")
	}
	ls := e.kiln("network", "ls")
	for _, n := range []string{"bridge", "host", "none", "front", "back"} {
		if !strings.Contains(ls, " "+n+" ") {
			t.Errorf("network ls lacks %s:\n%s", n, ls)
		}
	}
	web := strings.TrimSpace(e.kiln("run", "-d", "--name", "web", "--network", "front", "--network-alias", "www", "bb", "sh", "-c",
		"mkdir /www && echo front-page > /www/index.html && httpd -f -p 80 -h /www"))
	// Names resolve through the generated /etc/hosts (busybox ping: the
	// static busybox wget cannot resolve names). --dns 127.0.0.1 keeps any
	// failed lookup inside the container.
	ip := e.inspectF("{{.NetworkSettings.Networks.front.IPAddress}}", web)
	for _, name := range []string{"web", "www", web[:12]} {
		r := e.run("", "run", "--rm", "--dns", "127.0.0.1", "--network", "front", "bb", "ping", "-c", "1", "-W", "2", name)
		if r.code != 0 || !strings.Contains(r.stdout, "PING "+name+" ("+ip+")") {
			t.Errorf("ping %s on front: exit %d, %q %q", name, r.code, r.stdout, r.stderr)
		}
	}
	if r := e.retry("run", "--rm", "--network", "front", "bb", "sh", "-c", httpGet(ip)); !strings.HasSuffix(r.stdout, "\r\n\r\nfront-page\n") {
		t.Errorf("GET web on front: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if c := e.inspectNet("front", "{{len .Containers}}"); c != "1" {
		t.Errorf("front has %s containers", c)
	}
	r := e.run("", "run", "--rm", "--network", "back", "bb", "sh", "-c", httpGet(ip))
	if strings.Contains(r.stdout, "front-page") {
		t.Errorf("a container on back reached web on front: %q", r.stdout)
	}
	if r := e.run("", "run", "--rm", "--dns", "127.0.0.1", "--network", "back", "bb", "ping", "-c", "1", "-W", "1", "web"); r.code == 0 {
		t.Error("the name web resolves on back")
	}

	// connect: a running container on back joins front, finds web by name;
	// disconnect takes it away again.
	cli := strings.TrimSpace(e.kiln("run", "-d", "--name", "cli", "--dns", "127.0.0.1", "--network", "back", "bb", "sh", "-c",
		"until ping -c 1 -W 1 web >/dev/null 2>&1; do sleep 0.1; done; "+httpGet("$(ping -c 1 web | sed -n 's/^PING web (\\(.*\\)).*/\\1/p')")+"; sleep 3600"))
	e.kiln("network", "connect", "--alias", "client", "front", "cli")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(e.kiln("logs", cli), "front-page") {
		if time.Now().After(deadline) {
			t.Fatalf("cli never reached web after connect: %q", e.kiln("logs", cli))
		}
		time.Sleep(50 * time.Millisecond)
	}
	webHosts := filepath.Join(e.root, "containers", web, "hosts")
	if hosts, _ := os.ReadFile(webHosts); !strings.Contains(string(hosts), "\tcli client "+cli[:12]+"\n") {
		t.Errorf("web's hosts lacks cli:\n%s", hosts)
	}
	if r := e.run("", "network", "rm", "front"); r.code == 0 {
		t.Error("network rm of a network in use succeeded")
	}
	e.kiln("network", "disconnect", "front", "cli")
	if hosts, _ := os.ReadFile(webHosts); strings.Contains(string(hosts), "cli") {
		t.Errorf("web's hosts still has cli:\n%s", hosts)
	}
	if c := e.inspectNet("front", "{{len .Containers}}"); c != "1" {
		t.Errorf("front has %s containers after disconnect", c)
	}
	e.kiln("rm", "-f", web, cli)
	if out := e.kiln("network", "rm", "front"); out != "front\n" {
		t.Errorf("network rm = %q", out)
	}
}

// httpGet is a shell command that GETs / from host port 80 with busybox nc
// (the static busybox's wget crashes).
func httpGet(host string) string {
	return `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 ` + host + ` 80`
}

func (e *env) inspectNet(name, format string) string {
	e.t.Helper()
	return strings.TrimSpace(e.kiln("network", "inspect", "--format", format, name))
}

// TestNetworkMonitorKilled: SIGKILL of the monitor kills the container;
// the next kiln command that sees it cleans its network up: no veth left.
func TestNetworkMonitorKilled(t *testing.T) {
	e, links := newNetEnv(t)
	id := strings.TrimSpace(e.kiln("run", "-d", "-p", "127.0.0.1::80", "bb", "sh", "-c", "cat /sys/class/net/eth0/iflink; sleep 3600"))
	var iflink string
	for i := 0; i < 100 && iflink == ""; i++ {
		iflink = strings.TrimSpace(e.kiln("logs", id))
		time.Sleep(20 * time.Millisecond)
	}
	veth := ""
	ents, _ := os.ReadDir("/sys/class/net")
	for _, d := range ents {
		if b, err := os.ReadFile(filepath.Join("/sys/class/net", d.Name(), "ifindex")); err == nil && strings.TrimSpace(string(b)) == iflink {
			veth = d.Name()
		}
	}
	if !strings.HasPrefix(veth, "veth") {
		t.Fatalf("host side of eth0 (ifindex %s) = %q", iflink, veth)
	}
	*links = append(*links, veth)
	e.killMonitor(id)
	if s := e.inspectF("{{.State.Status}}", id); s != "exited" {
		t.Fatalf("status after the monitor's death = %s", s)
	}
	// (The bridge and its rules outlive it by the teardown delay: the
	// cleanup checks them after network prune.)
	e.assertNoLinks([]string{veth})
	if out := e.kiln("port", id); out != "" {
		t.Errorf("port after death = %q", out)
	}
}
