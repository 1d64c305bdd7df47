package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	units "github.com/docker/go-units"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
)

// Entitlements a build can be granted (kiln build --allow), as BuildKit's.
const (
	EntitlementNetworkHost      = "network.host"      // RUN --network=host
	EntitlementSecurityInsecure = "security.insecure" // RUN --security=insecure
)

// Network modes of RUN steps (Options.Network, RUN --network).
const (
	NetworkDefault = "default" // the build's own network namespace, outbound access through kiln's bridge
	NetworkNone    = "none"    // a namespace with only loopback
	NetworkHost    = "host"    // the host's network (needs EntitlementNetworkHost)
)

// BuildNetwork is the network namespace the RUN steps of one build share
// when their network is NetworkDefault.
type BuildNetwork struct {
	NS *os.File // an nsfs file the sandboxes join
	// Files are container paths bind-mounted over the image's for RUN steps
	// in NS (an /etc/resolv.conf that works from the namespace), as
	// runner.Spec.Files.
	Files map[string]string
	// Release detaches the namespace from its network; the build calls it
	// once, when it ends.
	Release func() error
	// Ready, when set, waits until NS is attached to its network (and
	// says if that failed); it may be called more than once. A sandbox
	// init may start in NS before (it waits for its config), which lets
	// the build's first RUN step start its init while the network is set
	// up; no command runs in NS before Ready returned nil.
	Ready func() error
}

// NetworkFunc makes a BuildNetwork; the build calls it at most once, at its
// first RUN step on the default network that is not cached.
type NetworkFunc func(ctx context.Context) (*BuildNetwork, error)

func checkSecurityOptions(o *Options) error {
	switch o.Network {
	case "":
		o.Network = NetworkDefault
	case NetworkDefault, NetworkNone:
	case NetworkHost:
		if !slices.Contains(o.Allow, EntitlementNetworkHost) {
			return fmt.Errorf("network mode %q requires the entitlement %s (kiln build --allow %s)", o.Network, EntitlementNetworkHost, EntitlementNetworkHost)
		}
	default:
		return fmt.Errorf("network mode %q not supported: use default, none or host", o.Network)
	}
	if err := checkRunLimits(o.RunLimits); err != nil {
		return err
	}
	for _, e := range o.Allow {
		if e != EntitlementNetworkHost && e != EntitlementSecurityInsecure {
			return fmt.Errorf("invalid entitlement %q: use %s or %s", e, EntitlementNetworkHost, EntitlementSecurityInsecure)
		}
	}
	return nil
}

// RunLimits are the resource limits of every RUN step of a build (kiln
// build --ulimit and --shm-size), as BuildKit's: part of the steps' cache
// keys, since a step may behave differently under them.
type RunLimits struct {
	Ulimits []*units.Ulimit `json:",omitempty"`
	ShmSize int64           `json:",omitempty"` // bytes of /dev/shm; 0 is runner.DefaultShmSize
}

// key is what the limits add to a RUN step's key: nothing without any, so
// that the keys of builds without them do not change.
func (l RunLimits) key() *RunLimits {
	if len(l.Ulimits) == 0 && l.ShmSize == 0 {
		return nil
	}
	return &l
}

func checkRunLimits(l RunLimits) error {
	if l.ShmSize < 0 {
		return fmt.Errorf("--shm-size %d: must be positive", l.ShmSize)
	}
	_, err := runner.Rlimits(l.Ulimits)
	return err
}

// sandboxes holds what every RUN step of a build shares: its confinement
// (Docker's defaults, or privileged for RUN --security=insecure), the
// cgroup that limits its devices and the build's network namespace, each
// made at the first step that needs it and released when the build ends.
type sandboxes struct {
	mu        sync.Mutex
	confined  *runner.Confinement
	insecure  *runner.Confinement
	cgroup    *runner.Cgroup
	network   *BuildNetwork
	networkFn NetworkFunc
	// spare is the sandbox init started for the build's next RUN step
	// while the last one ran and committed (runner.Prestart): nil when none is
	// on its way, else it yields one (nil if it failed to start).
	spare chan *runner.Prestarted
}

// prestart starts an init for the next RUN step in the background, in the
// network spec has, unless one is on its way already. The init's start
// overlaps with this step (its command, diff and commit).
func (s *sandboxes) prestart(spec *runner.Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare != nil {
		return
	}
	c := make(chan *runner.Prestarted, 1)
	s.spare = c
	netNone := spec.Network == "none" && spec.NetNS == nil
	go func() {
		p, err := runner.Prestart(spec.NetNS, netNone)
		if err != nil {
			p = nil // the step starts its own init, and meets the error itself
		}
		c <- p
	}()
}

// takeSpare returns the prestarted init, if any; the caller Closes it.
func (s *sandboxes) takeSpare() *runner.Prestarted {
	s.mu.Lock()
	c := s.spare
	s.spare = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return <-c
}

// confinement is the confinement of a RUN step (privileged with
// --security=insecure).
func (s *sandboxes) confinement(insecure bool) (*runner.Confinement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.confined
	sec := runner.Security{}
	if insecure && rootless.Active() {
		return nil, errors.New("--security=insecure is not supported by rootless kiln: an ordinary user's namespace cannot give a RUN step the host's devices and capabilities")
	}
	if insecure {
		c, sec.Privileged = &s.insecure, true
	}
	if *c == nil {
		conf, err := sec.Resolve()
		if err != nil {
			return nil, err
		}
		*c = conf
	}
	return *c, nil
}

// cgroupDirs are the directories of the build's device cgroup.
func (s *sandboxes) cgroupDirs() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cgroup == nil {
		cg, err := runner.NewBuildCgroup()
		if err != nil {
			return nil, err
		}
		s.cgroup = cg
	}
	return s.cgroup.Dirs(), nil
}

// defaultNetwork is the build's network namespace.
func (s *sandboxes) defaultNetwork(ctx context.Context) (*BuildNetwork, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.network != nil {
		return s.network, nil
	}
	if s.networkFn == nil {
		return nil, errors.New("this build has no network for RUN steps (Options.NetworkNamespace is not set)")
	}
	n, err := s.networkFn(ctx)
	if err != nil {
		return nil, fmt.Errorf("set up the build's network: %w", err)
	}
	s.network = n
	return n, nil
}

// networkReady waits until the build's network, if it has one, is ready
// for commands (BuildNetwork.Ready).
func (s *sandboxes) networkReady() error {
	s.mu.Lock()
	n := s.network
	s.mu.Unlock()
	if n == nil || n.Ready == nil {
		return nil
	}
	if err := n.Ready(); err != nil {
		return fmt.Errorf("set up the build's network: %w", err)
	}
	return nil
}

// release tears down what the build's steps shared.
func (s *sandboxes) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.spare != nil {
		// before the network it may be in
		errs = append(errs, (<-s.spare).Close())
		s.spare = nil
	}
	if s.network != nil {
		if s.network.Release != nil {
			errs = append(errs, s.network.Release())
		}
		if s.network.NS != nil {
			s.network.NS.Close()
		}
		s.network = nil
	}
	if s.cgroup != nil {
		errs = append(errs, s.cgroup.Remove())
		s.cgroup = nil
	}
	return errors.Join(errs...)
}

// confine applies the step's confinement, cgroup and network to spec.
func (b *build) confine(ctx context.Context, spec *runner.Spec, network string, insecure bool) error {
	conf, err := b.sb().confinement(insecure)
	if err != nil {
		return err
	}
	conf.Confine(spec)
	if spec.Rlimits, err = runner.Rlimits(b.opts.Ulimits); err != nil {
		return err
	}
	spec.ShmSize = b.opts.ShmSize
	if !conf.Privileged() {
		if spec.Cgroups, err = b.sb().cgroupDirs(); err != nil {
			return err
		}
	}
	switch network {
	case NetworkHost:
		spec.Network = "host"
	case NetworkNone:
		spec.Network = "none"
	default:
		n, err := b.sb().defaultNetwork(ctx)
		if err != nil {
			return err
		}
		spec.Network, spec.NetNS, spec.Files = "none", n.NS, n.Files
	}
	return nil
}
