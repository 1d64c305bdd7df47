package container

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/kiln-build/kiln/runner"
)

// DefaultCDISpecDirs are where the Container Device Interface's specs live,
// the CDI library's defaults (as podman and docker read them).
var DefaultCDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// ErrCDIDevice: no CDI spec provides a requested device.
var ErrCDIDevice = errors.New("CDI device not found")

// DeviceRequest is docker's HostConfig.DeviceRequests entry: --gpus
// (Capabilities [["gpu"]]; Count -1 is all) and CDI --device names (Driver
// "cdi", the qualified names in DeviceIDs).
type DeviceRequest struct {
	Driver       string
	Count        int
	DeviceIDs    []string
	Capabilities [][]string
	Options      map[string]string
}

// gpuKind is the CDI kind --gpus requests resolve to, as docker 25+ and
// podman do with the NVIDIA Container Toolkit's specs.
const gpuKind = "nvidia.com/gpu"

// IsCDIDevice reports whether a --device value is a CDI qualified name
// (vendor.com/class=name) rather than a host path.
func IsCDIDevice(s string) bool { return parser.IsQualifiedName(s) }

// ParseGpus parses docker's --gpus: "all", a count, or CSV fields
// count=N|all, device=ID[,ID...], capabilities=..., driver=... (a device
// list with commas must be quoted: '"device=0,1"').
func ParseGpus(s string) (DeviceRequest, error) {
	r := DeviceRequest{Capabilities: [][]string{{"gpu"}}}
	if s == "all" {
		r.Count = -1
		return r, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return r, fmt.Errorf("invalid --gpus %q: the count must be positive", s)
		}
		r.Count = n
		return r, nil
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return r, fmt.Errorf("invalid --gpus %q: %w", s, err)
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return r, fmt.Errorf("invalid --gpus %q: %q is not key=value", s, f)
		}
		switch k {
		case "count":
			if v == "all" {
				r.Count = -1
			} else if r.Count, err = strconv.Atoi(v); err != nil || r.Count <= 0 {
				return r, fmt.Errorf("invalid --gpus %q: bad count %q", s, v)
			}
		case "device":
			r.DeviceIDs = strings.Split(v, ",")
		case "capabilities":
			r.Capabilities = [][]string{strings.Split(v, ",")}
		case "driver":
			if v != "nvidia" && v != "cdi" {
				return r, fmt.Errorf("invalid --gpus %q: driver %q: kiln gives GPUs through CDI only", s, v)
			}
			r.Driver = v
		default:
			return r, fmt.Errorf("invalid --gpus %q: unknown option %q", s, k)
		}
	}
	if r.Count != 0 && len(r.DeviceIDs) > 0 {
		return r, fmt.Errorf("invalid --gpus %q: cannot set both count and device", s)
	}
	if r.Count == 0 && len(r.DeviceIDs) == 0 {
		r.Count = -1
	}
	return r, nil
}

// CDIDeviceRequest is the request of a CDI --device (docker 25+'s shape).
func CDIDeviceRequest(name string) DeviceRequest {
	return DeviceRequest{Driver: "cdi", DeviceIDs: []string{name}}
}

// cdiCache reads the CDI specs of hc's spec directories.
func cdiCache(hc *HostConfig) (*cdi.Cache, error) {
	dirs := hc.CDISpecDirs
	if len(dirs) == 0 {
		dirs = DefaultCDISpecDirs
	}
	c, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if err != nil {
		// A spec that does not parse is reported, not fatal: others may
		// still provide the devices (the error says which failed).
		if c == nil {
			return nil, fmt.Errorf("read CDI specs: %w", err)
		}
	}
	return c, nil
}

// cdiDevices are the CDI qualified names r asks for, resolved against the
// specs in hc's directories: a GPU count takes the first devices of the
// nvidia.com/gpu kind (by name), IDs name them, all is the spec's "all".
func (r DeviceRequest) cdiDevices(hc *HostConfig) ([]string, error) {
	if r.Driver == "cdi" {
		for _, id := range r.DeviceIDs {
			if !parser.IsQualifiedName(id) {
				return nil, fmt.Errorf("device %q: not a CDI device name (vendor.com/class=name)", id)
			}
		}
		return r.DeviceIDs, nil
	}
	if !slices.ContainsFunc(r.Capabilities, func(cs []string) bool { return slices.Contains(cs, "gpu") }) {
		return nil, fmt.Errorf("device request %v: only GPUs (capabilities=gpu) can be requested", r.Capabilities)
	}
	switch {
	case len(r.DeviceIDs) > 0:
		out := make([]string, 0, len(r.DeviceIDs))
		for _, id := range r.DeviceIDs {
			out = append(out, gpuKind+"="+id)
		}
		return out, nil
	case r.Count < 0:
		return []string{gpuKind + "=all"}, nil
	}
	c, err := cdiCache(hc)
	if err != nil {
		return nil, err
	}
	var gpus []string
	for _, d := range c.ListDevices() {
		if strings.HasPrefix(d, gpuKind+"=") && d != gpuKind+"=all" {
			gpus = append(gpus, d)
		}
	}
	if len(gpus) < r.Count {
		return nil, fmt.Errorf("--gpus %d: %w: the CDI specs in %s provide %d %s devices", r.Count, ErrCDIDevice, strings.Join(c.GetSpecDirectories(), ", "), len(gpus), gpuKind)
	}
	return gpus[:r.Count], nil
}

// cdiEdits resolves hc's device requests through the CDI specs and returns
// their edits as an OCI runtime spec (nil without requests): device nodes,
// cgroup device rules, mounts, environment and hooks.
func cdiEdits(hc *HostConfig) (*specs.Spec, error) {
	var names []string
	for _, r := range hc.DeviceRequests {
		ds, err := r.cdiDevices(hc)
		if err != nil {
			return nil, err
		}
		names = append(names, ds...)
	}
	if len(names) == 0 {
		return nil, nil
	}
	c, err := cdiCache(hc)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	unresolved, err := c.InjectDevices(s, names...)
	if len(unresolved) > 0 {
		return nil, fmt.Errorf("%w: no CDI spec in %s provides %s%s", ErrCDIDevice,
			strings.Join(c.GetSpecDirectories(), ", "), strings.Join(unresolved, ", "), specErrors(c))
	}
	if err != nil {
		return nil, fmt.Errorf("inject CDI devices: %w", err)
	}
	if s.Linux.NetDevices != nil || s.Linux.IntelRdt != nil || len(s.Process.User.AdditionalGids) > 0 {
		return nil, fmt.Errorf("CDI devices %s: network devices, Intel RDT and additional GIDs are not supported by kiln", strings.Join(names, ", "))
	}
	if s.Hooks != nil && (len(s.Hooks.Prestart) > 0 || len(s.Hooks.CreateRuntime) > 0) { //nolint:staticcheck // Prestart is what old specs use
		return nil, fmt.Errorf("CDI devices %s: prestart and createRuntime hooks are not supported by kiln (createContainer, startContainer, poststart and poststop are)", strings.Join(names, ", "))
	}
	return s, nil
}

// specErrors names the specs that failed to load, which may be why a
// device is missing.
func specErrors(c *cdi.Cache) string {
	var out []string
	for path, errs := range c.GetErrors() {
		for _, e := range errs {
			out = append(out, fmt.Sprintf("%s: %v", path, e))
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	return " (" + strings.Join(out, "; ") + ")"
}

// cdiDeviceRules are the devices cgroup rules of the CDI devices.
func cdiDeviceRules(s *specs.Spec) []string {
	if s == nil || s.Linux.Resources == nil {
		return nil
	}
	var out []string
	for _, d := range s.Linux.Resources.Devices {
		if !d.Allow || d.Access == "" {
			continue
		}
		major, minor := "*", "*"
		if d.Major != nil {
			major = strconv.FormatInt(*d.Major, 10)
		}
		if d.Minor != nil {
			minor = strconv.FormatInt(*d.Minor, 10)
		}
		out = append(out, fmt.Sprintf("%s %s:%s %s", d.Type, major, minor, d.Access))
	}
	return out
}

// applyCDI puts the CDI edits in the sandbox spec: device nodes, mounts
// (after the container's own) and environment (overriding the image's).
// Hooks are returned for the monitor and the init to run.
func applyCDI(s *specs.Spec, spec *runner.Spec) {
	for _, d := range s.Linux.Devices {
		n := &runner.DeviceNode{Type: d.Type, Major: d.Major, Minor: d.Minor}
		if d.FileMode != nil {
			n.Mode = uint32(d.FileMode.Perm())
		}
		if d.UID != nil {
			n.UID = *d.UID
		}
		if d.GID != nil {
			n.GID = *d.GID
		}
		spec.Devices = append(spec.Devices, runner.Device{Target: d.Path, Node: n})
	}
	for _, m := range s.Mounts {
		typ := m.Type
		if typ == "" || typ == "bind" {
			typ = "bind"
			if slices.Contains(m.Options, "rbind") {
				typ = "rbind"
			}
		}
		spec.ExtraMounts = append(spec.ExtraMounts, runner.Mount{Type: typ, Source: m.Source, Target: m.Destination, Options: m.Options})
	}
	spec.Env = mergeEnv(spec.Env, s.Process.Env)
}
