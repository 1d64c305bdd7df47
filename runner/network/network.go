package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/kiln-build/kiln/runner"
)

var (
	// ErrNoSuchNetwork: no network has that name, ID or ID prefix.
	ErrNoSuchNetwork = errors.New("no such network")
	// ErrNetworkExists: a network already has the name.
	ErrNetworkExists = errors.New("network already exists")
	// ErrInUse: the network has endpoints.
	ErrInUse = errors.New("network has active endpoints")
	// ErrPredefined: the operation is not allowed on bridge, host or none.
	ErrPredefined = errors.New("operation is not permitted on a predefined network")
	// ErrOverlap: the subnet overlaps another network's or a route of the host.
	ErrOverlap = errors.New("pool overlaps with other one on this address space")
	// ErrAttached: the container already has an endpoint on the network.
	ErrAttached = errors.New("container is already attached to the network")
	// ErrNotAttached: the container has no endpoint on the network.
	ErrNotAttached = errors.New("container is not connected to the network")
)

// Predefined network names: "bridge" is the default network; "host" and
// "none" are modes, not networks one attaches to.
const (
	DefaultNetwork = "bridge"
	HostNetwork    = "host"
	NoneNetwork    = "none"
)

// Network is one network, as stored in <id>.json.
type Network struct {
	Name       string            `json:"Name"`
	ID         string            `json:"Id"`
	Created    time.Time         `json:"Created"`
	Driver     string            `json:"Driver"` // bridge
	Subnet     netip.Prefix      `json:"Subnet"`
	Gateway    netip.Addr        `json:"Gateway"`
	Bridge     string            `json:"Bridge"`     // the bridge device
	AutoSubnet bool              `json:"AutoSubnet"` // picked from the pools: may move while no endpoint exists
	Internal   bool              `json:"Internal"`   // no outbound traffic
	Labels     map[string]string `json:"Labels,omitempty"`
	// Up: the bridge and the firewall rules were made. They outlive the
	// last endpoint by the config's teardown-delay (making and removing
	// them for every container would cost a container start several times
	// over): a reaper process (see Reap) takes them down once the network
	// has been idle that long; removing or pruning the network at once.
	Up bool `json:"Up,omitempty"`
	// IdleSince is when the last endpoint of a network still up went.
	IdleSince time.Time `json:"IdleSince,omitzero"`
	// Endpoints by container ID.
	Endpoints map[string]*Endpoint `json:"Endpoints,omitempty"`
}

// Default reports whether n is the default "bridge" network, which has no
// name resolution (as on Docker).
func (n *Network) Default() bool { return n.Name == DefaultNetwork }

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	ContainerID   string
	ContainerName string
	Hostname      string
	Aliases       []string `json:",omitempty"`
	EndpointID    string
	IP            netip.Addr
	MAC           string
	HostVeth      string   // the host side of the veth pair
	Interface     string   // its peer inside the container: eth0, eth1...
	HostsPath     string   `json:",omitempty"` // the container's /etc/hosts, rewritten on changes
	ExtraHosts    []string `json:",omitempty"`
	Attached      time.Time
	// Holder, when set, is the process whose life the endpoint lasts (a
	// build's RUN steps' namespace): once that process is gone, the next
	// change to the store's networks releases the endpoint.
	Holder *Holder `json:",omitempty"`
}

// Holder names a process: its PID and start time (runner.ProcStart), a
// guard against PID reuse.
type Holder struct {
	Pid   int
	Start uint64
}

// Alive reports whether the process still runs.
func (h *Holder) Alive() bool {
	st, ok := runner.ProcStart(h.Pid)
	return ok && st == h.Start
}

// Self is the calling process as a Holder.
func Self() *Holder {
	pid := os.Getpid()
	st, _ := runner.ProcStart(pid)
	return &Holder{Pid: pid, Start: st}
}

// Names are what peers on a user-defined network call the endpoint.
func (e *Endpoint) Names() []string {
	names := []string{e.ContainerName}
	names = append(names, e.Aliases...)
	if len(e.ContainerID) >= 12 {
		names = append(names, e.ContainerID[:12])
	}
	return dedupe(names)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// validName is Docker's network name rule.
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
