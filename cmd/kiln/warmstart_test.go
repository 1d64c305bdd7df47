package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

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
	monitors := processesOf("kiln-monitor\x00" + e.root + "\x00")
	if len(monitors) != 1 {
		t.Fatalf("monitors of the container: %v, want one", monitors)
	}
	pid := filepath.Base(filepath.Dir(monitors[0]))
	const chunk = 4 << 20 // the Go runtime's heap chunk
	heap := false
	for _, m := range kilntest.Mappings(t, pid) {
		if m.Perms == "rw-p" && m.Path == "" && m.Start%chunk == 0 && (m.End-m.Start)%chunk == 0 {
			heap = heap || slices.Contains(m.Flags, "hg")
		}
	}
	if !heap {
		t.Error("no heap mapping of the monitor is advised into huge pages (VmFlags hg)")
	}
}
