package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/network"
)

// RunOptions are the HostConfig settings of run's --ulimit, --shm-size,
// --sysctl and --gpus (and CDI --device), with docker's names and JSON
// shapes; HostConfig embeds them.
type RunOptions struct {
	Ulimits        []*units.Ulimit   `json:",omitempty"`
	ShmSize        int64             // bytes of /dev/shm (docker's default 64 MiB)
	Sysctls        map[string]string `json:",omitempty"`
	DeviceRequests []DeviceRequest   `json:",omitempty"` // --gpus and CDI --device (cdi.go)
	CgroupnsMode   string            // "private": a cgroup namespace of its own, /sys/fs/cgroup showing its cgroups
	// CDISpecDirs are where CDI specs are read (DefaultCDISpecDirs when
	// empty), recorded at create.
	CDISpecDirs []string `json:"kilnCDISpecDirs,omitempty"`
}

// checkRunOptions validates and completes hc's RunOptions at create time.
func checkRunOptions(hc *HostConfig) error {
	if hc.ShmSize < 0 {
		return fmt.Errorf("invalid --shm-size %d: must be positive", hc.ShmSize)
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = runner.DefaultShmSize
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = "private"
	}
	if hc.CgroupnsMode != "private" {
		return fmt.Errorf("invalid cgroupns mode %q: kiln gives every container a private cgroup namespace", hc.CgroupnsMode)
	}
	if _, err := runner.Rlimits(hc.Ulimits); err != nil {
		return err
	}
	privateNet := hc.NetworkMode != network.HostNetwork && !strings.HasPrefix(hc.NetworkMode, "container:")
	for name := range hc.Sysctls {
		if err := runner.ValidateSysctl(name, privateNet); err != nil {
			return fmt.Errorf("--sysctl: %w", err)
		}
	}
	for _, r := range hc.DeviceRequests {
		if _, err := r.cdiDevices(hc); err != nil {
			return err
		}
	}
	return nil
}

// applyRunOptions puts c's RunOptions in its sandbox spec.
func (c *Container) applyRunOptions(spec *runner.Spec) error {
	hc := &c.HostConfig
	rl, err := runner.Rlimits(hc.Ulimits)
	if err != nil {
		return err
	}
	spec.Rlimits, spec.ShmSize, spec.Sysctls = rl, hc.ShmSize, hc.Sysctls
	edits, err := cdiEdits(hc)
	if err != nil || edits == nil {
		return err
	}
	applyCDI(edits, spec)
	if h := edits.Hooks; h != nil && len(h.CreateContainer)+len(h.StartContainer)+len(h.Poststart)+len(h.Poststop) > 0 {
		bundle, err := c.writeBundle(spec)
		if err != nil {
			return err
		}
		spec.Hooks = &runner.Hooks{
			CreateContainer: h.CreateContainer, StartContainer: h.StartContainer, Poststart: h.Poststart, Poststop: h.Poststop,
			ID: c.ID, Bundle: bundle,
		}
	}
	return nil
}

// writeBundle writes the OCI bundle the hooks' state points at: a
// config.json with the root path (the merged tree, mounted inside the
// sandbox), the process and the hostname.
func (c *Container) writeBundle(spec *runner.Spec) (string, error) {
	dir := filepath.Join(c.Dir, "bundle")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write OCI bundle: %w", err)
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	s := specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: spec.Rootfs, Readonly: spec.ReadonlyRootfs},
		Process:  &specs.Process{Args: spec.Args, Env: spec.Env, Cwd: cwd, Terminal: spec.Terminal},
		Hostname: spec.Hostname,
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return "", fmt.Errorf("write OCI bundle: %w", err)
	}
	return dir, nil
}
