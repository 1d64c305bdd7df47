// Package network gives kiln containers Docker's bridge networking without a
// daemon: networks are data in the store, and the kernel state they need (a
// bridge, its gateway address, firewall rules) is made when their first
// container attaches and taken down when their last one has been gone for
// the teardown delay (2 s by default), so that containers run back to back
// cost no firewall change while nothing of kiln outlives its containers for
// long. Removing the network, or network prune (system prune too), takes it
// down at once.
//
// The deferred teardown is done by a reaper (see Reap): the detach that
// leaves a network without endpoints (a container's monitor releasing it,
// rm, network disconnect, or any command noticing a dead monitor) records
// when (Network.IdleSince) and, unless a reaper of the store is already
// pending, starts one: this binary re-executed, in a session of its own,
// with no descriptor but /dev/null. The reaper sleeps until the idle
// networks are due, then, under the store's lock (which every attach takes
// too, so that a teardown and an attach never interleave), takes down those
// still without endpoints; a container that attached meanwhile keeps its
// network, and its own detach sets a new due time. The reaper also takes
// down the bridges of stores deleted while their networks were up. A
// teardown delay of 0 takes a network down in the detach itself.
//
// Layout under <store root>/networks/:
//
//	lock           flock(2)ed by every change, so that concurrent kiln
//	               processes allocate distinct addresses
//	reaper.lock    flock(2)ed by the store's reaper until its last look
//	<id>.json      one network: name, subnet, gateway, bridge device, whether
//	               it is up (and since when idle), and its endpoints
//	               (container, address, MAC, host-side veth)
//
// Kernel state (bridges, routes, firewall rules) is shared by every store
// root of the host: changes to it also hold /run/kiln/network.lock, and
// /run/kiln/bridges records which store brought up each bridge.
//
// Rootless (see internal/rootless), that kernel state lives in the user's
// rootless network namespace instead of the host's, pinned at
// $XDG_RUNTIME_DIR/kiln/netns and connected to the outside by slirp4netns
// with the host's loopback out of reach (see kernelNS); the lock and the
// bridge records are in $XDG_RUNTIME_DIR/kiln too. Published ports are
// still served on the host by the userland proxy, which dials from the
// rootless namespace; host ports below net.ipv4.ip_unprivileged_port_start
// are refused (CheckPublishable).
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
//	  "firewall": "iptables",            // or "nftables"; default: iptables when the host has it
//	  "teardown-delay": "2s"             // how long a network outlives its last container
//	}                                    // ("500ms", or a number of seconds; 0: at once)
//
// Each container has a network namespace held by its monitor process; an
// endpoint is a veth pair, eth0 (eth1, ...) inside, veth<7 hex> on the host,
// enslaved to the network's bridge, as on Docker. Outbound traffic is
// masqueraded, traffic between two kiln bridges is dropped. Containers on
// a user-defined network find each other by name and alias through their
// generated /etc/hosts, rewritten on every attach and detach. Published
// ports are served by a userland proxy (see Proxy) that the monitor runs.
package network
