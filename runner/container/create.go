package container

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/network"
)

// CreateOptions are what `create` and `run` ask for, on top of an image.
type CreateOptions struct {
	Name        string
	Image       digest.Digest
	ImageName   string
	ImageConfig ocispec.ImageConfig
	Layers      []digest.Digest // the image's diffIDs
	Lowers      []string        // their snapshot directories, top-most first, empty layers left out

	Cmd           []string // replaces the image's CMD when not empty
	Entrypoint    []string // replaces the image's ENTRYPOINT when EntrypointSet (empty: none)
	EntrypointSet bool
	Env           []string // added to the image's ENV, overriding the same keys
	WorkingDir    string
	User          string
	Hostname      string // default: the short container ID
	Tty           bool
	OpenStdin     bool
	Detach        bool // run -d: nothing attached, stdin (with OpenStdin) kept open across attaches
	StopSignal    string
	StopTimeout   *int
	Labels        map[string]string
	HostConfig    HostConfig
	ExposedPorts  []string // --expose, added to the image's EXPOSE
	// Streams are -a's "stdin", "stdout", "stderr": only those are
	// attached (stdin also with OpenStdin). nil: stdout and stderr.
	Streams []string
	// ImageHealthcheck is the image's HEALTHCHECK, Healthcheck the
	// --health-* flags over it (Test ["NONE"]: --no-healthcheck).
	ImageHealthcheck, Healthcheck *HealthConfig
}

// NewConfig merges the options with the image's config as docker does:
// the entrypoint followed by the command make the argv; the image's ENV,
// WORKDIR, USER and STOPSIGNAL apply unless overridden.
func NewConfig(o CreateOptions) (Config, error) {
	ic := o.ImageConfig
	entry := ic.Entrypoint
	cmd := ic.Cmd
	if o.EntrypointSet {
		entry = o.Entrypoint
		cmd = nil // docker drops the image's CMD along with its ENTRYPOINT
	}
	if len(o.Cmd) > 0 {
		cmd = o.Cmd
	}
	argv := append(append([]string{}, entry...), cmd...)
	if len(argv) == 0 {
		return Config{}, fmt.Errorf("create container: %w", errNoCommand)
	}
	sec, err := security(o.HostConfig)
	if err != nil {
		return Config{}, err
	}
	if err := sec.Check(); err != nil {
		return Config{}, err
	}
	env := mergeEnv(ic.Env, o.Env)
	cc := ContainerConfig{
		Hostname: o.Hostname, User: ic.User, Tty: o.Tty, OpenStdin: o.OpenStdin,
		// As docker's: a detached container's stdin outlives its clients.
		StdinOnce:   o.OpenStdin && !o.Detach,
		AttachStdin: o.OpenStdin && !o.Detach, AttachStdout: !o.Detach, AttachStderr: !o.Detach,
		Env: env, Cmd: cmd, Image: o.ImageName, Volumes: ic.Volumes, WorkingDir: ic.WorkingDir,
		Entrypoint: entry, Labels: ic.Labels, StopSignal: ic.StopSignal, StopTimeout: o.StopTimeout,
		Healthcheck: MergeHealth(o.ImageHealthcheck, o.Healthcheck),
	}
	if o.Streams != nil && !o.Detach {
		cc.AttachStdin = o.OpenStdin || slices.Contains(o.Streams, "stdin")
		cc.AttachStdout, cc.AttachStderr = slices.Contains(o.Streams, "stdout"), slices.Contains(o.Streams, "stderr")
	}
	if o.User != "" {
		cc.User = o.User
	}
	if o.WorkingDir != "" {
		cc.WorkingDir = o.WorkingDir
	}
	if o.StopSignal != "" {
		cc.StopSignal = o.StopSignal
	}
	if cc.StopSignal != "" {
		if _, err := ParseSignal(cc.StopSignal); err != nil {
			return Config{}, err
		}
	}
	if len(o.Labels) > 0 {
		cc.Labels = map[string]string{}
		for k, v := range ic.Labels {
			cc.Labels[k] = v
		}
		for k, v := range o.Labels {
			cc.Labels[k] = v
		}
	}
	hc := o.HostConfig
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = "no"
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = network.DefaultNetwork
	}
	if cc.ExposedPorts, err = exposedPorts(ic.ExposedPorts, o.ExposedPorts); err != nil {
		return Config{}, err
	}
	if err := checkRunOptions(&hc); err != nil {
		return Config{}, err
	}
	if err := checkRootless(&hc); err != nil {
		return Config{}, err
	}
	if !hc.Privileged && !sec.SystemPathsUnconfined {
		hc.MaskedPaths, hc.ReadonlyPaths = runner.DefaultMaskedPaths, runner.DefaultReadonlyPaths
	}
	return Config{
		Name: o.Name, Path: argv[0], Args: argv[1:], Image: o.Image, ImageName: o.ImageName,
		Layers: o.Layers, Lowers: o.Lowers, Config: cc, HostConfig: hc,
	}, nil
}

// mergeEnv is base with over's KEY=VALUE entries replacing the same keys and
// the new ones appended; a bare "KEY" in over is dropped here (the CLI
// resolves it from its own environment).
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// ParseRestartPolicy parses "no", "always", "unless-stopped" and
// "on-failure[:N]".
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasCount {
			return p, fmt.Errorf("invalid restart policy %q: only on-failure takes a retry count", s)
		}
		if name == "" {
			p.Name = "no"
		}
	case "on-failure":
		if hasCount {
			n, err := parseInt(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy %q: bad retry count", s)
			}
			p.MaximumRetryCount = int(n)
		}
	default:
		return p, fmt.Errorf("invalid restart policy %q", s)
	}
	return p, nil
}
