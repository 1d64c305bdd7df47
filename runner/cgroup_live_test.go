package runner

import (
	"reflect"
	"testing"
)

func TestLiveFiles(t *testing.T) {
	for _, c := range []struct {
		name    string
		r       LiveResources
		v2      bool
		growing bool
		want    []cgroupFile
	}{
		{"v1 shrinking memory: memory first", LiveResources{Memory: 100, MemorySwap: 200}, false, false,
			[]cgroupFile{{"memory", "memory.limit_in_bytes", "100"}, {"memory", "memory.memsw.limit_in_bytes", "200"}}},
		{"v1 growing memory: memsw first", LiveResources{Memory: 100, MemorySwap: 200}, false, true,
			[]cgroupFile{{"memory", "memory.memsw.limit_in_bytes", "200"}, {"memory", "memory.limit_in_bytes", "100"}}},
		{"v1 memory alone: swap left as it is", LiveResources{Memory: 100}, false, false,
			[]cgroupFile{{"memory", "memory.limit_in_bytes", "100"}}},
		{"v2 swap is what exceeds memory", LiveResources{Memory: 100, MemorySwap: 300}, true, false,
			[]cgroupFile{{"memory", "memory.max", "100"}, {"memory", "memory.swap.max", "200"}}},
		{"unlimited swap", LiveResources{MemorySwap: -1}, true, false,
			[]cgroupFile{{"memory", "memory.swap.max", "max"}}},
		{"pids, cpuset, shares", LiveResources{PidsLimit: -1, CpusetCpus: "0-1", CPUShares: 512}, false, false,
			[]cgroupFile{{"cpu", "cpu.shares", "512"}, {"pids", "pids.max", "max"}, {"cpuset", "cpuset.cpus", "0-1"}}},
	} {
		if got := liveFiles(c.r, c.v2, c.growing); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}

func TestParseIOStats(t *testing.T) {
	r, w := parseBlkioV1("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 9\n8:16 Read 4\nTotal 4612\n")
	if r != 4100 || w != 512 {
		t.Errorf("v1: %d %d", r, w)
	}
	r, w = parseIOStatV2("8:0 rbytes=4096 wbytes=512 rios=1 wios=2\n8:16 rbytes=4 wbytes=0\n")
	if r != 4100 || w != 512 {
		t.Errorf("v2: %d %d", r, w)
	}
}
