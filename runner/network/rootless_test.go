package network

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/rootless"
)

// The test binary doubles as a rootless kiln process: with rootlessStepEnv
// set it runs the rootless scenario (as root of a user namespace owned by
// an ordinary user) instead of the tests, and, re-executed as a network
// reaper, reaps.
const rootlessStepEnv = "KILN_NET_ROOTLESS_STEP"

func TestMain(m *testing.M) {
	if IsReaper() {
		Reap()
	}
	if os.Getenv(rootlessStepEnv) != "" {
		if err := rootlessScenario(); err != nil {
			fmt.Fprintln(os.Stderr, "rootless scenario:", err)
			os.Exit(1)
		}
		fmt.Println("rootless scenario: ok")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRootlessNetwork runs the rootless scenario as a fresh user, in a user
// and mount namespace of its own as rootless kiln's processes share one:
// outbound TCP from a namespace on the default bridge through slirp4netns,
// the host's loopback out of reach, two namespaces of a user-defined network
// that find each other by name, a published port reached on the host's
// 127.0.0.1, a port below ip_unprivileged_port_start refused, networking
// restored after the stack process is killed, and nothing left behind.
func TestRootlessNetwork(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, bin := range []string{stackName, "iptables"} {
		if _, err := lookBin(bin); err != nil {
			t.Skipf("needs %s (make deps installs it)", bin)
		}
	}
	u := kilntest.NewUnshareUser(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := u.Copy(self, "network.test")
	// Networks go down with their last endpoint: no reaper to wait for.
	if err := os.WriteFile(filepath.Join(u.Store(), "config.json"), []byte(`{"teardown-delay": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kilntest.KillPidFile(stackPidPathIn(u.RuntimeDir()), stackName) })

	// A server on the host's own address (reached through slirp4netns) and
	// one on its loopback (which must stay out of reach).
	outside := kilntest.ServeHello(t, net.JoinHostPort(kilntest.HostAddress(t), "0"))
	loopback := kilntest.ServeHello(t, "127.0.0.1:0")
	out, err := u.Run([]string{rootlessStepEnv + "=1", "KILN_TEST_STORE=" + u.Store(), "KILN_TEST_OUTSIDE=" + outside,
		"KILN_TEST_LOOPBACK_PORT=" + loopback[strings.LastIndex(loopback, ":")+1:]}, bin, "-test.run=^$")
	if err != nil || !bytes.Contains(out, []byte("rootless scenario: ok")) {
		b, _ := os.ReadFile(filepath.Join(u.RuntimeDir(), stackName+".log"))
		t.Fatalf("rootless scenario: %v\n%s\n%s", err, out, b)
	}
	// Nothing is left in the host's mount namespace (the user's processes,
	// and so its namespaces, are checked gone when the user is removed).
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(u.Dir)) {
		t.Errorf("mount under %s left in the host's mount namespace", u.Dir)
	}
}

func stackPidPathIn(runtimeDir string) string { return filepath.Join(runtimeDir, stackName+".pid") }

// rootlessScenario runs in the user's namespaces, as rootless kiln.
func rootlessScenario() error {
	if !rootless.Active() {
		return errors.New("not rootless")
	}
	s, err := Open(os.Getenv("KILN_TEST_STORE"))
	if err != nil {
		return err
	}
	outside := os.Getenv("KILN_TEST_OUTSIDE")

	// Outbound TCP from a namespace on the default bridge (a build's RUN
	// steps' network) reaches the host's real address through slirp4netns.
	ns, release, err := s.AttachSelf("build-a", DefaultNetwork)
	if err != nil {
		return fmt.Errorf("attach to the default network: %w", err)
	}
	if err := httpGet(ns, outside, "hello from"); err != nil {
		return fmt.Errorf("outbound from the default network: %w", err)
	}
	// The host's loopback, which slirp4netns maps to 10.0.2.2 unless told
	// not to, is out of reach.
	if err := httpGet(ns, "10.0.2.2:"+os.Getenv("KILN_TEST_LOOPBACK_PORT"), "hello from"); err == nil {
		return errors.New("the host's loopback is reachable from the default network")
	}
	if err := errors.Join(release(), ns.Close()); err != nil {
		return err
	}

	// Two namespaces on a user-defined network find each other by name.
	if _, err := s.Create(CreateOptions{Name: "rlnet"}); err != nil {
		return err
	}
	hostsDir, err := os.MkdirTemp("", "hosts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(hostsDir)
	peers := map[string]*os.File{}
	for _, name := range []string{"c1", "c2"} {
		hosts := filepath.Join(hostsDir, name)
		if err := os.WriteFile(hosts, nil, 0o644); err != nil {
			return err
		}
		pns, err := NewNamespace()
		if err != nil {
			return err
		}
		defer pns.Close()
		if _, _, err := s.Attach(pns, AttachRequest{ContainerID: name, ContainerName: name, Hostname: name, Network: "rlnet", HostsPath: hosts}); err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
		peers[name] = pns
	}
	c2IP, err := lookupHosts(filepath.Join(hostsDir, "c1"), "c2")
	if err != nil {
		return err
	}
	var l net.Listener
	if err := inNS(peers["c2"], func() (err error) { l, err = net.Listen("tcp", ":80"); return err }); err != nil {
		return fmt.Errorf("listen in c2: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from c2") })}
	go srv.Serve(l)
	defer srv.Close()
	if err := httpGet(peers["c1"], net.JoinHostPort(c2IP, "80"), "hello from c2"); err != nil {
		return fmt.Errorf("c1 to c2 by name: %w", err)
	}

	// A published port: the proxy listens on the host's 127.0.0.1 and
	// dials c2 from the rootless namespace.
	p, err := Listen(PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer p.Close()
	p.Serve(netip.MustParseAddr(c2IP))
	if err := httpGet(nil, net.JoinHostPort("127.0.0.1", p.Ports["80/tcp"][0].HostPort), "hello from c2"); err != nil {
		return fmt.Errorf("published port from the host: %w", err)
	}
	// A port below ip_unprivileged_port_start is refused, saying how to allow it.
	if start := unprivilegedPortStart(); start > 80 {
		low := PortMap{"80/tcp": {{HostPort: "80"}}}
		if err := CheckPublishable(low); err == nil || !strings.Contains(err.Error(), "sysctl net.ipv4.ip_unprivileged_port_start=80") {
			return fmt.Errorf("port 80 published rootless: %v", err)
		}
		if lp, err := Listen(low); err == nil || !strings.Contains(err.Error(), "ip_unprivileged_port_start") {
			if lp != nil {
				lp.Close()
			}
			return fmt.Errorf("port 80 bound rootless: %v", err)
		}
	}

	// The stack process killed, the next attach starts it again.
	kilntest.KillPidFile(stackPidPath(), stackName)
	for stackRunning() {
		time.Sleep(10 * time.Millisecond) // until its waiter has reaped it
	}
	ns, release, err = s.AttachSelf("build-b", DefaultNetwork)
	if err != nil {
		return fmt.Errorf("attach after the stack died: %w", err)
	}
	if err := httpGet(ns, outside, "hello from"); err != nil {
		return fmt.Errorf("outbound after the stack was restarted: %w", err)
	}
	if err := errors.Join(release(), ns.Close()); err != nil {
		return err
	}

	// Teardown: every bridge and rule of the store goes with its networks.
	for _, name := range []string{"c1", "c2"} {
		if err := s.Release(name); err != nil {
			return err
		}
	}
	if _, err := s.Prune(); err != nil {
		return err
	}
	kns, err := kernelNS()
	if err != nil {
		return err
	}
	defer kns.Close()
	// (The host ends of the build namespaces' veth pairs, unplugged, go
	// with those namespaces when the kernel cleans them up.)
	var left []string
	err = inNS(kns, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if a := l.Attrs(); strings.HasPrefix(a.Name, BridgePrefix) || (strings.HasPrefix(a.Name, "veth") && a.MasterIndex != 0) {
				left = append(left, a.Name)
			}
		}
		out, _ := exec.Command("iptables", "-S").CombinedOutput()
		if bytes.Contains(out, []byte(BridgePrefix)) {
			left = append(left, string(out))
		}
		return err
	})
	if err != nil || len(left) > 0 {
		return fmt.Errorf("left in the rootless namespace: %v %v", left, err)
	}
	kilntest.KillPidFile(stackPidPath(), stackName)
	for stackRunning() {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// httpGet GETs / from addr over a connection made in ns (nil: here) and
// checks the body has want.
func httpGet(ns *os.File, addr, want string) error {
	c, err := dialIn(ns, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) })
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("GET %s: %q, want %q", addr, body, want)
	}
	return nil
}

// lookupHosts resolves name in a hosts file, as a container's libc does.
func lookupHosts(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for _, n := range f[min(1, len(f)):] {
			if n == name {
				return f[0], nil
			}
		}
	}
	return "", fmt.Errorf("%s not in %s:\n%s", name, path, b)
}
