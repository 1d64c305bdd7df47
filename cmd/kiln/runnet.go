package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

// netFlags are the networking flags of `create` and `run`.
type netFlags struct {
	publish, expose, dns, dnsSearch, dnsOption, addHost, aliases []string
	publishAll                                                   bool
}

func (f *netFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fs.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fs.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fs.StringArrayVar(&f.dnsOption, "dns-option", nil, "set DNS options")
	fs.StringArrayVar(&f.addHost, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "add network-scoped alias for the container")
}

// apply checks the network mode and puts the flags into o.
func (f *netFlags) apply(g *globals, mode string, o *container.CreateOptions) error {
	hc := &o.HostConfig
	switch {
	case mode == "" || mode == "default" || mode == network.DefaultNetwork:
		// The name is the default network's (made by the first attach when
		// missing): nothing to look up, as for any run without --network.
		mode = network.DefaultNetwork
	case mode == network.HostNetwork || mode == network.NoneNetwork:
	case strings.HasPrefix(mode, "container:"):
		if _, err := container.NewStore(storeRoot(g)).Get(strings.TrimPrefix(mode, "container:")); err != nil {
			return err
		}
	default:
		ns, err := network.Open(storeRoot(g))
		if err != nil {
			return err
		}
		n, err := ns.Get(mode)
		if err != nil {
			return err
		}
		mode = n.Name
	}
	hc.NetworkMode = mode
	if len(f.aliases) > 0 && (mode == network.DefaultNetwork || mode == network.HostNetwork || mode == network.NoneNetwork || strings.HasPrefix(mode, "container:")) {
		return errors.New("network-scoped aliases are only supported for user-defined networks")
	}
	if len(f.publish) > 0 || f.publishAll {
		switch {
		case mode == network.HostNetwork:
			fmt.Fprintln(os.Stderr, "WARNING: Published ports are discarded when using host network mode")
		case mode == network.NoneNetwork || strings.HasPrefix(mode, "container:"):
			return errors.New("conflicting options: port publishing and the container type network mode")
		}
	}
	if len(f.publish) > 0 {
		hc.PortBindings = network.PortMap{}
		for _, p := range f.publish {
			if err := network.ParsePublish(p, hc.PortBindings); err != nil {
				return err
			}
		}
		if err := network.CheckPublishable(hc.PortBindings); err != nil {
			return err
		}
		for k := range hc.PortBindings {
			o.ExposedPorts = append(o.ExposedPorts, k)
		}
	}
	for _, e := range f.expose {
		port, proto, _ := strings.Cut(e, "/")
		m := network.PortMap{}
		if err := network.ParsePublish(port+"/"+map[bool]string{true: proto, false: "tcp"}[proto != ""], m); err != nil {
			return fmt.Errorf("invalid range format for --expose: %s", e)
		}
		for k := range m {
			o.ExposedPorts = append(o.ExposedPorts, k)
		}
	}
	hc.PublishAllPorts = f.publishAll
	hc.Dns, hc.DnsSearch, hc.DnsOptions = f.dns, f.dnsSearch, f.dnsOption
	for _, h := range f.addHost {
		if _, _, err := network.ParseExtraHost(h); err != nil {
			return err
		}
	}
	hc.ExtraHosts = f.addHost
	return nil
}

// created finishes what Create cannot record: the aliases.
func (f *netFlags) created(c *container.Container) error {
	if len(f.aliases) == 0 {
		return nil
	}
	return c.SetNetworkAliases(f.aliases)
}
