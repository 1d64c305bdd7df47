package container

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/network"
)

// A container's network mode is HostConfig.NetworkMode: "bridge" (the
// default network), the name of a user-defined network, "host" (the host's
// stack), "none" (only lo) or "container:ID" (another container's stack).
// The networks it joins at start are NetworkMode and those `network
// connect` added (networks.json); its published ports, once bound by its
// monitor, are in ports.json.

// NetworkAttachment is one network a container joins when it starts.
type NetworkAttachment struct {
	Network string
	Aliases []string `json:",omitempty"`
}

func (c *Container) storeRoot() string { return filepath.Dir(filepath.Dir(c.Dir)) }

// ownNetworkNamespace reports whether the mode gives the container a network
// namespace of its own attached to networks.
func ownNetworkNamespace(mode string) bool {
	return mode != network.HostNetwork && mode != network.NoneNetwork && !strings.HasPrefix(mode, "container:")
}

// Attachments are the networks the container joins at start.
func (c *Container) Attachments() ([]NetworkAttachment, error) {
	var out []NetworkAttachment
	err := readJSON(filepath.Join(c.Dir, "networks.json"), &out)
	if errors.Is(err, fs.ErrNotExist) {
		if ownNetworkNamespace(c.HostConfig.NetworkMode) {
			return []NetworkAttachment{{Network: c.HostConfig.NetworkMode}}, nil
		}
		return nil, nil
	}
	return out, err
}

// SetNetworkAliases gives the container names on its first network (its
// NetworkMode), as `run --network-alias` does.
func (c *Container) SetNetworkAliases(aliases []string) error {
	att, err := c.Attachments()
	if err != nil {
		return err
	}
	if len(att) == 0 {
		return fmt.Errorf("network-scoped aliases are only supported for user-defined networks")
	}
	att[0].Aliases = aliases
	return writeJSONAtomic(filepath.Join(c.Dir, "networks.json"), att)
}

// ConnectNetwork adds a network to the container: at once when it runs,
// at its next start anyway.
func (s *Store) ConnectNetwork(c *Container, net string, aliases []string) error {
	if !ownNetworkNamespace(c.HostConfig.NetworkMode) {
		return fmt.Errorf("container %s: cannot connect a container in network mode %q", c.ShortID(), c.HostConfig.NetworkMode)
	}
	ns, err := network.Open(s.root)
	if err != nil {
		return err
	}
	n, err := ns.Get(net)
	if err != nil {
		return err
	}
	att, err := c.Attachments()
	if err != nil {
		return err
	}
	for _, a := range att {
		if b, err := ns.Get(a.Network); err == nil && b.ID == n.ID {
			return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, network.ErrAttached)
		}
	}
	if err := c.Refresh(); err != nil {
		return err
	}
	if c.State.Running {
		f, err := os.Open("/proc/" + strconv.Itoa(c.State.Pid) + "/ns/net")
		if err != nil {
			return fmt.Errorf("connect container %s: %w", c.ShortID(), err)
		}
		defer f.Close()
		if _, _, err := ns.Attach(f, c.attachRequest(n.Name, aliases)); err != nil {
			return err
		}
	}
	att = append(att, NetworkAttachment{Network: n.Name, Aliases: aliases})
	return writeJSONAtomic(filepath.Join(c.Dir, "networks.json"), att)
}

// DisconnectNetwork removes a network from the container.
func (s *Store) DisconnectNetwork(c *Container, net string) error {
	ns, err := network.Open(s.root)
	if err != nil {
		return err
	}
	n, err := ns.Get(net)
	if err != nil {
		return err
	}
	att, err := c.Attachments()
	if err != nil {
		return err
	}
	keep := att[:0]
	found := false
	for _, a := range att {
		if b, err := ns.Get(a.Network); err == nil && b.ID == n.ID {
			found = true
			continue
		}
		keep = append(keep, a)
	}
	if err := ns.Detach(c.ID, n.ID); err != nil && (!errors.Is(err, network.ErrNotAttached) || !found) {
		return err
	}
	return writeJSONAtomic(filepath.Join(c.Dir, "networks.json"), keep)
}

func (c *Container) attachRequest(net string, aliases []string) network.AttachRequest {
	return network.AttachRequest{
		ContainerID: c.ID, ContainerName: c.Name, Hostname: c.Config.Config.Hostname,
		Network: net, Aliases: aliases, HostsPath: filepath.Join(c.Dir, "hosts"), ExtraHosts: c.HostConfig.ExtraHosts,
	}
}

// networkEtcFiles are the container's first /etc/resolv.conf and /etc/hosts.
func networkEtcFiles(c *Container) (resolv, hosts []byte, err error) {
	hc := c.HostConfig
	for _, h := range hc.ExtraHosts {
		if _, _, err := network.ParseExtraHost(h); err != nil {
			return nil, nil, err
		}
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		host = nil // no resolver configured: an empty file, as Docker leaves it
	}
	hostNet := hc.NetworkMode == network.HostNetwork
	resolv, err = network.ResolvConf(host, network.DNSOptions{Servers: hc.Dns, Search: hc.DnsSearch, Options: hc.DnsOptions}, hostNet)
	if err != nil {
		return nil, nil, err
	}
	if hostNet {
		// The host's own names, as Docker copies them, then --add-host.
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = append(b, network.HostsFile(hc.ExtraHosts, nil)[len(network.HostsFile(nil, nil)):]...)
			return resolv, hosts, nil
		}
	}
	return resolv, network.HostsFile(hc.ExtraHosts, nil), nil
}

// exposedPorts merges the image's EXPOSE with --expose.
func exposedPorts(image map[string]struct{}, extra []string) (map[string]struct{}, error) {
	if len(image) == 0 && len(extra) == 0 {
		return nil, nil
	}
	out := map[string]struct{}{}
	for p := range image {
		k, err := network.NormalizePort(p)
		if err != nil {
			return nil, err
		}
		out[k] = struct{}{}
	}
	for _, p := range extra {
		k, err := network.NormalizePort(p)
		if err != nil {
			return nil, err
		}
		out[k] = struct{}{}
	}
	return out, nil
}

// publishedPorts are the bindings to make: --publish, and with
// --publish-all a random host port for every other exposed port.
func (c *Container) publishedPorts() network.PortMap {
	m := network.PortMap{}
	for k, v := range c.HostConfig.PortBindings {
		m[k] = append([]network.PortBinding{}, v...)
	}
	if c.HostConfig.PublishAllPorts {
		for k := range c.Config.Config.ExposedPorts {
			if len(m[k]) == 0 {
				m[k] = []network.PortBinding{{}}
			}
		}
	}
	return m
}

func (c *Container) portsPath() string { return filepath.Join(c.Dir, "ports.json") }

// Ports are the container's published ports as bound, while it runs.
func (c *Container) Ports() network.PortMap {
	var m network.PortMap
	if c.State.Running || c.State.Restarting {
		_ = readJSON(c.portsPath(), &m)
	}
	return m
}

// netSandbox is the network of a running container, held by its monitor.
type netSandbox struct {
	store *network.Store
	ns    *os.File // the network namespace (nil: host or none)
	proxy *network.Proxy
	// unattached: the namespace is made but not yet attached to its
	// networks (attachNetwork does it as the first run's sandbox starts).
	unattached bool
}

// setupNetwork makes the container's network before its first run: the
// published ports are bound first (a taken one fails the start before
// anything else is made), then the namespace, which attachNetwork attaches
// to its networks while the first sandbox starts in it.
func (m *monitorState) setupNetwork() (err error) {
	c := m.c
	mode := c.HostConfig.NetworkMode
	switch {
	case mode == network.HostNetwork || mode == network.NoneNetwork:
		return nil
	case strings.HasPrefix(mode, "container:"):
		other, err := m.s.Get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return err
		}
		if !other.State.Running {
			return fmt.Errorf("cannot join network of a non running container: %s", other.ShortID())
		}
		f, err := os.Open("/proc/" + strconv.Itoa(other.State.Pid) + "/ns/net")
		if err != nil {
			return fmt.Errorf("join network of container %s: %w", other.ShortID(), err)
		}
		m.net.ns = f
		return nil
	}
	store, err := network.Open(m.s.root)
	if err != nil {
		return err
	}
	m.net.store = store
	defer func() {
		if err != nil {
			m.teardownNetwork()
		}
	}()
	if ports := c.publishedPorts(); len(ports) > 0 {
		if m.net.proxy, err = network.Listen(ports); err != nil {
			return fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", c.Name, c.ShortID(), err)
		}
	}
	if m.net.ns, err = m.netns.take(); err != nil {
		return err
	}
	m.net.unattached = true
	return nil
}

// attachNetwork attaches the namespace setupNetwork made to the container's
// networks, once: the veth pairs, addresses, routes and names, and the
// published ports' proxies. It runs while the first sandbox's init starts
// (runner.Spec.Joined), and before the init mounts /etc/hosts or runs the
// command; on failure the start fails and the monitor tears it all down.
func (m *monitorState) attachNetwork(int) error {
	if !m.net.unattached {
		return nil
	}
	m.net.unattached = false
	c, store := m.c, m.net.store
	att, err := c.Attachments()
	if err != nil {
		return err
	}
	var first netip.Addr
	for _, a := range att {
		e, _, err := store.Attach(m.net.ns, c.attachRequest(a.Network, a.Aliases))
		if err != nil {
			return err
		}
		if !first.IsValid() {
			first = e.IP
		}
	}
	if m.net.proxy != nil {
		if !first.IsValid() {
			return errors.New("published ports need a network")
		}
		if err := writeJSONAtomic(c.portsPath(), m.net.proxy.Ports); err != nil {
			return err
		}
		m.net.proxy.Serve(first)
	}
	return nil
}

// startAttach starts attachNetwork now, beside the first run's cgroup, stdio
// and spec (the init's start-up is already under way when the monitor's
// constructor started it): the first sandbox's Joined hook then waits for
// its result instead of doing it all in line.
func (m *monitorState) startAttach() {
	if !m.net.unattached {
		return
	}
	m.attached = make(chan error, 1)
	go func() { m.attached <- m.attachNetwork(0) }()
}

// joined is the sandboxes' Joined hook: the network attach, done here or
// by the one startAttach started.
func (m *monitorState) joined(pid int) error {
	if m.attached == nil {
		return m.attachNetwork(pid)
	}
	err := <-m.attached
	m.attached = nil
	return err
}

// applyNetwork puts the sandbox in the container's network.
func (m *monitorState) applyNetwork(spec *runner.Spec) {
	spec.Network = network.NoneNetwork
	if m.net.ns != nil {
		spec.NetNS = m.net.ns
		spec.Joined = m.joined
	} else if m.c.HostConfig.NetworkMode == network.HostNetwork {
		spec.Network = network.HostNetwork
	}
}

// teardownNetwork undoes setupNetwork once the container is gone for good.
func (m *monitorState) teardownNetwork() {
	m.stopNetwork()
	if m.net.store != nil {
		// The container is dead: its namespace goes with the fd closed below.
		if err := m.net.store.ReleaseDying(m.c.ID); err != nil {
			fmt.Fprintln(os.Stderr, "kiln-monitor:", err)
		}
	}
	if m.net.ns != nil {
		m.net.ns.Close()
		m.net.ns = nil
	}
}

// stopNetwork is the part of teardownNetwork that uses the container's
// files: its published ports close (ports.json goes) and a pending
// attach is waited for. It may be called again.
func (m *monitorState) stopNetwork() {
	if m.attached != nil { // a first run that failed before its Joined hook
		<-m.attached
		m.attached = nil
	}
	if m.net.proxy != nil {
		m.net.proxy.Close()
		m.net.proxy = nil
	}
	os.Remove(m.c.portsPath())
}

// releaseNetwork cleans up after a container whose monitor died unseen:
// its endpoints (veth pairs, addresses, and the bridge and firewall rules
// of networks it was the last on).
func releaseNetwork(c *Container) {
	os.Remove(c.portsPath())
	if ns, err := network.Open(c.storeRoot()); err == nil {
		_ = ns.Release(c.ID)
	}
}

// NetworkSettings is Docker's NetworkSettings of container inspect.
type NetworkSettings struct {
	Bridge                 string
	SandboxID              string
	SandboxKey             string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  network.PortMap
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*EndpointSettings
}

// EndpointSettings is one network of NetworkSettings.Networks.
type EndpointSettings struct {
	IPAMConfig          any
	Links               []string
	Aliases             []string
	MacAddress          string
	NetworkID           string
	EndpointID          string
	Gateway             string
	IPAddress           string
	IPPrefixLen         int
	IPv6Gateway         string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	DNSNames            []string
}

// NetworkSettings describes the container's networks as docker inspect
// does: addresses while it runs, the networks it will join otherwise.
func (c *Container) NetworkSettings() NetworkSettings {
	ns := NetworkSettings{Ports: network.PortMap{}, Networks: map[string]*EndpointSettings{}}
	for k := range c.Config.Config.ExposedPorts {
		ns.Ports[k] = nil
	}
	for k, v := range c.Ports() {
		ns.Ports[k] = v
	}
	running := c.State.Running || c.State.Restarting
	if running {
		ns.SandboxKey = "/proc/" + strconv.Itoa(c.State.Pid) + "/ns/net"
		ns.SandboxID = c.ID
	}
	mode := c.HostConfig.NetworkMode
	if !ownNetworkNamespace(mode) {
		if !strings.HasPrefix(mode, "container:") {
			ns.Networks[mode] = &EndpointSettings{}
		}
		return ns
	}
	store, err := network.Open(c.storeRoot())
	if err != nil {
		return ns
	}
	eps, nets, _ := store.Endpoints(c.ID)
	att, _ := c.Attachments()
	for _, a := range att {
		es := &EndpointSettings{Aliases: a.Aliases}
		name := a.Network
		if n, err := store.Get(a.Network); err == nil {
			name, es.NetworkID = n.Name, n.ID
		}
		ns.Networks[name] = es
	}
	for name, e := range eps {
		n := nets[name]
		es := ns.Networks[name]
		if es == nil {
			es = &EndpointSettings{NetworkID: n.ID}
			ns.Networks[name] = es
		}
		es.MacAddress, es.EndpointID, es.Gateway = e.MAC, e.EndpointID, n.Gateway.String()
		es.IPAddress, es.IPPrefixLen = e.IP.String(), n.Subnet.Bits()
		if !n.Default() {
			es.DNSNames = e.Names()
		}
		if n.Default() {
			ns.Bridge, ns.EndpointID, ns.Gateway = n.Bridge, e.EndpointID, es.Gateway
			ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = es.IPAddress, es.IPPrefixLen, e.MAC
		}
	}
	return ns
}
