// Package network gives kiln containers Docker's bridge networking without a
// daemon: networks are data in the store, and the kernel state they need (a
// bridge, its gateway address, firewall rules) is made when their first
// container attaches and then stays, as docker0's does, so that starting a
// container costs no firewall change: removing the network, or network
// prune (system prune too), takes it down.
//
// Layout under <store root>/networks/:
//
//	lock           flock(2)ed by every change, so that concurrent kiln
//	               processes allocate distinct addresses
//	<id>.json      one network: name, subnet, gateway, bridge device and its
//	               endpoints (container, address, MAC, host-side veth)
//
// Kernel state (bridges, routes, firewall rules) is shared by every store
// root of the host: changes to it also hold /run/kiln/network.lock.
//
// The network "bridge" is the default one. Its bridge device is kiln0 for
// the store root /var/lib/kiln and kiln-<8 hex digits of the root's path>
// for other roots, so that stores side by side never share a bridge. Its
// subnet is the first free /16 of the address pools, one that overlaps no
// route of the host (read from /proc/net/route) and no other kiln network;
// networks created without --subnet take the next free one.
//
// A kiln config file, <store root>/config.json or else
// /etc/kiln/config.json, may set (the keys are Docker's daemon.json keys):
//
//	{
//	  "bridge": "kiln0",                 // the default network's bridge device
//	  "bip": "172.18.0.1/16",            // its gateway address and subnet
//	  "mtu": 1500,                       // veth and bridge MTU (default: the uplink's)
//	  "default-address-pools": [         // where subnets are taken from
//	    {"base": "172.17.0.0/12", "size": 16},
//	    {"base": "192.168.0.0/16", "size": 20}
//	  ],
//	  "firewall": "iptables"             // or "nftables"; default: iptables when the host has it
//	}
//
// Each container has a network namespace held by its monitor process; an
// endpoint is a veth pair, eth0 (eth1, ...) inside, veth<7 hex> on the host,
// enslaved to the network's bridge, as on Docker. Outbound traffic is
// masqueraded, traffic between two kiln bridges is dropped. Containers on
// a user-defined network find each other by name and alias through their
// generated /etc/hosts, rewritten on every attach and detach. Published
// ports are served by a userland proxy (see Proxy) that the monitor runs.
package network
