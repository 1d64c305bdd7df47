package runner

import (
	"strconv"
	"strings"
)

// CgroupStats are a cgroup's resource counters, as `stats` shows them.
type CgroupStats struct {
	CPUUsage    uint64 // CPU time used, in nanoseconds
	MemoryUsage uint64 // bytes, page cache that can be reclaimed at once left out (as docker's CLI)
	MemoryLimit uint64 // bytes; 0 when the cgroup has no limit
	BlockRead   uint64 // bytes read from block devices
	BlockWrite  uint64 // bytes written
	Pids        uint64 // tasks
}

// LiveResources are the limits `update` changes on a running container;
// zero fields are left as they are.
type LiveResources struct {
	Memory     int64  // bytes
	MemorySwap int64  // memory+swap bytes; -1 unlimited swap
	CPUShares  int64  // relative weight
	NanoCPUs   int64  // CPU quota in units of 1e-9 CPUs
	PidsLimit  int64  // > 0 a limit, -1 unlimited
	CpusetCpus string // "0-1", "0,2"
}

// liveFiles are the control file writes that apply r, in an order the
// kernel accepts (v1: memory.limit_in_bytes must stay below
// memory.memsw.limit_in_bytes, so a growing limit writes memsw first, a
// shrinking one last).
func liveFiles(r LiveResources, v2 bool, growing bool) []cgroupFile {
	res := Resources{Memory: r.Memory, CPUShares: r.CPUShares, NanoCPUs: r.NanoCPUs}
	if r.PidsLimit > 0 {
		res.PidsLimit = r.PidsLimit
	}
	var out []cgroupFile
	for _, f := range cgroupFiles(res, v2) {
		if f.Controller != "memory" {
			out = append(out, f)
		}
	}
	if r.PidsLimit < 0 {
		out = append(out, cgroupFile{"pids", "pids.max", "max"})
	}
	if r.CpusetCpus != "" {
		out = append(out, cgroupFile{"cpuset", "cpuset.cpus", r.CpusetCpus})
	}
	mem := memoryFiles(r.Memory, r.MemorySwap, v2)
	if growing && !v2 {
		// memsw before memory.
		for i, j := 0, len(mem)-1; i < j; i, j = i+1, j-1 {
			mem[i], mem[j] = mem[j], mem[i]
		}
	}
	return append(mem, out...)
}

// memoryFiles are the writes of a memory limit and a memory+swap limit
// (docker's --memory-swap: -1 unlimited swap, 0 left as it is).
func memoryFiles(memory, swap int64, v2 bool) []cgroupFile {
	var out []cgroupFile
	if memory > 0 {
		name := "memory.limit_in_bytes"
		if v2 {
			name = "memory.max"
		}
		out = append(out, cgroupFile{"memory", name, strconv.FormatInt(memory, 10)})
	}
	switch {
	case swap < 0:
		if v2 {
			out = append(out, cgroupFile{"memory", "memory.swap.max", "max"})
		} else {
			out = append(out, cgroupFile{"memory", "memory.memsw.limit_in_bytes", "-1"})
		}
	case swap > 0 && v2:
		out = append(out, cgroupFile{"memory", "memory.swap.max", strconv.FormatInt(max(swap-memory, 0), 10)})
	case swap > 0:
		out = append(out, cgroupFile{"memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10)})
	}
	return out
}

// parseUint reads a control file's single number ("max" is 0).
func parseUint(data string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(data), 10, 64)
	return n
}

// parseBlkioV1 sums the Read and Write lines of blkio.throttle.io_service_bytes
// ("8:0 Read 4096").
func parseBlkioV1(data string) (read, write uint64) {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// parseIOStatV2 sums rbytes= and wbytes= of io.stat
// ("8:0 rbytes=4096 wbytes=0 rios=1 ...").
func parseIOStatV2(data string) (read, write uint64) {
	for _, line := range strings.Split(data, "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}
