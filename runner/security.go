package runner

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/runner/seccomp"
)

// Security is what confines a sandbox beyond its namespaces. Its zero value
// is Docker's default confinement, the one a `docker run` container and a
// BuildKit RUN step get: DefaultCapabilities, Docker's default seccomp
// profile, DefaultMaskedPaths and DefaultReadonlyPaths, /sys read-only, only
// the devices of DefaultDevices usable (enforced by the sandbox's cgroup),
// no_new_privs off. RUN steps and containers are confined by the same
// function, Confine, from this one description.
type Security struct {
	// Privileged lifts it all, as docker run --privileged and BuildKit's
	// RUN --security=insecure: every capability, no seccomp filter, no
	// masked or read-only paths, /sys read-write, the host's devices.
	Privileged bool
	// CapAdd and CapDrop change the capability set as --cap-add/--cap-drop.
	CapAdd, CapDrop []string
	// NoNewPrivileges sets no_new_privs (--security-opt no-new-privileges).
	NoNewPrivileges bool
	// SeccompProfile is a seccomp profile in Docker's JSON format; nil is
	// Docker's default profile. SeccompUnconfined turns seccomp off.
	SeccompProfile    []byte
	SeccompUnconfined bool
	// SystemPathsUnconfined keeps /proc and /sys paths unmasked and
	// writable (--security-opt systempaths=unconfined).
	SystemPathsUnconfined bool
}

// ParseSecurityOpt adds docker's --security-opt values to s:
// seccomp=unconfined|PROFILE.json (a file, or the profile's JSON itself as
// docker keeps it in HostConfig), no-new-privileges[=true|false],
// systempaths=unconfined, and the AppArmor and SELinux options that say
// "none" (apparmor=unconfined, label=disable: kiln applies neither). Any
// other value is an error: an option is never silently dropped.
func (s *Security) ParseSecurityOpt(opts []string) error {
	for _, o := range opts {
		k, v, hasValue := strings.Cut(o, "=")
		if !hasValue {
			k, v, hasValue = strings.Cut(o, ":") // docker's legacy separator
		}
		switch k {
		case "no-new-privileges":
			b := true
			if hasValue {
				var err error
				if b, err = strconv.ParseBool(v); err != nil {
					return fmt.Errorf("invalid --security-opt %q: no-new-privileges takes true or false", o)
				}
			}
			s.NoNewPrivileges = b
		case "seccomp":
			switch {
			case v == "unconfined":
				s.SeccompUnconfined, s.SeccompProfile = true, nil
			case v == "":
				return fmt.Errorf("invalid --security-opt %q: seccomp needs unconfined or a profile file", o)
			case strings.HasPrefix(strings.TrimSpace(v), "{"):
				// The profile itself, as docker's client sends it and
				// HostConfig.SecurityOpt keeps it.
				if _, err := seccomp.Load([]byte(v)); err != nil {
					return fmt.Errorf("seccomp profile: %w", err)
				}
				s.SeccompUnconfined, s.SeccompProfile = false, []byte(v)
			default:
				data, err := readSeccompProfile(v)
				if err != nil {
					return err
				}
				s.SeccompUnconfined, s.SeccompProfile = false, data
			}
		case "systempaths":
			if v != "unconfined" {
				return fmt.Errorf("invalid --security-opt %q: systempaths only takes unconfined", o)
			}
			s.SystemPathsUnconfined = true
		case "apparmor":
			if v != "unconfined" {
				return fmt.Errorf("invalid --security-opt %q: kiln applies no AppArmor profile (only apparmor=unconfined is accepted)", o)
			}
		case "label":
			if v != "disable" {
				return fmt.Errorf("invalid --security-opt %q: kiln applies no SELinux labels (only label=disable is accepted)", o)
			}
		default:
			return fmt.Errorf("invalid --security-opt %q: unknown option (seccomp, no-new-privileges, systempaths, apparmor=unconfined and label=disable are supported)", o)
		}
	}
	return nil
}

// Capabilities is the capability set s gives (every one when privileged).
func (s Security) Capabilities() ([]string, error) {
	if s.Privileged {
		return AllCapabilities(), nil
	}
	return Capabilities(nil, s.CapAdd, s.CapDrop)
}

// Confinement is a Security resolved once (capabilities checked, the
// seccomp profile compiled), to confine any number of sandboxes.
type Confinement struct {
	privileged      bool
	caps            []string
	noNewPrivileges bool
	seccomp         *seccomp.Filter // nil: none
	masked, ro      []string
}

// Resolve checks s and compiles its seccomp profile for its capability set.
func (s Security) Resolve() (*Confinement, error) {
	caps, err := s.Capabilities()
	if err != nil {
		return nil, err
	}
	c := &Confinement{privileged: s.Privileged, caps: caps, noNewPrivileges: s.NoNewPrivileges}
	if s.Privileged {
		return c, nil
	}
	if !s.SeccompUnconfined {
		if c.seccomp, err = seccompFilter(s.SeccompProfile, caps); err != nil {
			return nil, err
		}
	}
	if !s.SystemPathsUnconfined {
		c.masked, c.ro = DefaultMaskedPaths, DefaultReadonlyPaths
	}
	return c, nil
}

// Check reports what Resolve would, without compiling the built-in default
// profile (it compiles for every capability set: the seccomp tests hold it
// to that): a container's creation checks its options this way, and its
// monitor compiles the filter when it starts it.
func (s Security) Check() error {
	if s.Privileged || s.SeccompUnconfined || s.SeccompProfile == nil {
		_, err := s.Capabilities()
		return err
	}
	_, err := s.Resolve()
	return err
}

// Privileged reports whether the confinement is --privileged's.
func (c *Confinement) Privileged() bool { return c.privileged }

// Confine sets spec's capabilities, seccomp filter, no_new_privs, masked
// and read-only paths and privileged mode. Devices are the cgroup's job:
// the caller puts the sandbox in a cgroup that allows DefaultDevices (see
// Resources.Devices) unless Privileged.
func (c *Confinement) Confine(spec *Spec) {
	spec.Privileged = c.privileged
	spec.Capabilities = slices.Clone(c.caps)
	spec.NoNewPrivileges = c.noNewPrivileges
	spec.Seccomp = c.seccomp
	spec.MaskedPaths, spec.ReadonlyPaths = c.masked, c.ro
}

// ConfineExec does the same for a process started in a running sandbox.
func (c *Confinement) ConfineExec(spec *ExecSpec) {
	spec.Capabilities = slices.Clone(c.caps)
	spec.NoNewPrivileges = c.noNewPrivileges
	spec.Seccomp = c.seccomp
}

// seccompFilter compiles a profile in Docker's JSON format (nil: Docker's
// default) for a process with the capabilities caps.
func seccompFilter(profile []byte, caps []string) (*seccomp.Filter, error) {
	if profile == nil && sameSet(caps, DefaultCapabilities) {
		f, err := defaultFilter()
		if err != nil {
			return nil, err
		}
		return &seccomp.Filter{Flags: f.Flags, Program: slices.Clone(f.Program)}, nil
	}
	p := seccomp.Default()
	if profile != nil {
		var err error
		if p, err = seccomp.Load(profile); err != nil {
			return nil, err
		}
	}
	f, err := seccomp.Compile(p, caps)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// defaultFilter is the built-in default profile compiled for
// DefaultCapabilities, the filter of most containers: compiled once per
// process (a pure function of the two and of the kernel), and ahead of need
// by WarmSeccomp.
var defaultFilter = sync.OnceValues(func() (seccomp.Filter, error) {
	return seccomp.Compile(seccomp.Default(), DefaultCapabilities)
})

// WarmSeccomp compiles the default filter in the background: for a process
// that waits before it knows its sandbox (a container's monitor started
// ahead of its container), so that the compilation is not on the start's
// critical path.
func WarmSeccomp() { go func() { _, _ = defaultFilter() }() }

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// InlineSecurityOpt turns seccomp=FILE into seccomp=<the file's JSON>, as
// docker's client does before it creates a container, so the container
// keeps the profile it was created with.
func InlineSecurityOpt(opts []string) ([]string, error) {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, "seccomp="); ok && v != "unconfined" && v != "" && !strings.HasPrefix(strings.TrimSpace(v), "{") {
			data, err := readSeccompProfile(v)
			if err != nil {
				return nil, err
			}
			o = "seccomp=" + string(data)
		}
		out = append(out, o)
	}
	return out, nil
}

// readSeccompProfile reads a profile file and checks that it parses; it is
// compiled once, by Resolve, for the capabilities it will run with.
func readSeccompProfile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", path, err)
	}
	if _, err := seccomp.Load(data); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return data, nil
}
