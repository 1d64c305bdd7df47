package container

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/kiln-build/kiln/internal/proc"
	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
)

// limitFlags are the flags of hc's resource limits that are set, by their
// docker names.
func limitFlags(hc *HostConfig) []string {
	var out []string
	for _, f := range []struct {
		set  bool
		name string
	}{
		{hc.Memory != 0, "--memory"},
		{hc.MemorySwap != 0, "--memory-swap"},
		{hc.NanoCpus != 0, "--cpus"},
		{hc.CpuShares != 0, "--cpu-shares"},
		{hc.PidsLimit != nil && *hc.PidsLimit > 0, "--pids-limit"},
		{hc.CpusetCpus != "", "--cpuset-cpus"},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// checkRootless refuses at create time what rootless kiln cannot give:
// resource limits without cgroups, --privileged, and --device of a node
// the user cannot open.
func checkRootless(hc *HostConfig) error {
	if !rootless.Active() {
		return nil
	}
	if flags := limitFlags(hc); len(flags) > 0 {
		if err := checkCgroups(flags[0]); err != nil {
			return err
		}
	}
	if hc.Privileged {
		return fmt.Errorf("--privileged is not supported by rootless kiln: an ordinary user's namespace cannot give a container the host's devices and capabilities")
	}
	for _, d := range hc.Devices {
		f, err := os.OpenFile(d.PathOnHost, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("--device %s: rootless kiln can only pass devices its user can open: %w", d.PathOnHost, err)
		}
		f.Close()
	}
	return nil
}

// limitFlags are the flags of the limits o sets.
func (o UpdateOptions) limitFlags() []string {
	hc := HostConfig{}
	if o.Memory != nil {
		hc.Memory = 1
	}
	if o.MemorySwap != nil {
		hc.MemorySwap = 1
	}
	if o.NanoCpus != nil {
		hc.NanoCpus = 1
	}
	if o.CpuShares != nil {
		hc.CpuShares = 1
	}
	if o.PidsLimit != nil {
		one := int64(1)
		hc.PidsLimit = &one
	}
	if o.CpusetCpus != nil {
		hc.CpusetCpus = "0"
	}
	return limitFlags(&hc)
}

// checkCgroups is nil when kiln has cgroups, else the refusal of what
// needs them (a verb: "pause", "stats").
func checkCgroups(what string) error {
	if why := runner.CgroupsUnavailable(); why != nil {
		return fmt.Errorf("%s needs cgroups, and %w", what, why)
	}
	return nil
}

// pidNamespacePids lists the processes in the pid namespace of pid (the
// container's processes, exec'd ones included): top's list when there is
// no cgroup to read it from.
func pidNamespacePids(pid int) []int {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range proc.All() {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(p) + "/ns/pid"); err == nil && l == ns {
			out = append(out, p)
		}
	}
	return out
}
