package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mapping is one mapping of a process, from its smaps.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	flags      []string
}

func smaps(t *testing.T, pid string) []mapping {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fs[0], "-"); ok && !strings.HasSuffix(fs[0], ":") {
			a, _ := strconv.ParseUint(lo, 16, 64)
			b, _ := strconv.ParseUint(hi, 16, 64)
			m := mapping{start: a, end: b, perms: fs[1]}
			if len(fs) >= 6 {
				m.path = fs[5]
			}
			ms = append(ms, m)
			continue
		}
		if len(ms) == 0 {
			continue
		}
		m := &ms[len(ms)-1]
		if fs[0] == "VmFlags:" {
			m.flags = fs[1:]
		}
	}
	return ms
}

// A kiln process's Go heap is advised into huge pages (internal/warmstart),
// the container monitor's among them, which runs from the sealed copy of
// the binary. (That its code was mapped at start does not show a second
// later: by then its faults have mapped it all too.)
func TestWarmStart(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages")
	}
	e := newContainerEnv(t)
	id := strings.TrimSpace(e.kiln("run", "-d", "bb", "sleep", "300"))
	defer e.kiln("rm", "-f", id)
	var pid string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(data), "kiln-monitor\x00"+e.root+"\x00") {
			pid = filepath.Base(filepath.Dir(p))
		}
	}
	if pid == "" {
		t.Fatal("no monitor of the container")
	}
	const chunk = 4 << 20 // the Go runtime's heap chunk
	heap := false
	for _, m := range smaps(t, pid) {
		if m.perms == "rw-p" && m.path == "" && m.start%chunk == 0 && (m.end-m.start)%chunk == 0 {
			for _, f := range m.flags {
				heap = heap || f == "hg"
			}
		}
	}
	if !heap {
		t.Error("no heap mapping of the monitor is advised into huge pages (VmFlags hg)")
	}
}
