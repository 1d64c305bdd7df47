package builder

import (
	"slices"
	"strings"
	"testing"
)

// TestRunStepOverlayVolatile: a RUN step's root is a volatile overlay (its
// fsyncs and unmount sync nothing: the store syncs a new layer when it
// commits it).
func TestRunStepOverlayVolatile(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	r := e.mustBuild("FROM localhost/bb:latest\nRUN awk '$5 == \"/\"' /proc/self/mountinfo > /root-mount\n", Options{})
	line := e.catFile(r.id, "/root-mount")
	fsType, superOpts := mountinfoFS(line)
	// "volatile", or "fsync=volatile" since Linux 6.x
	if fsType != "overlay" || !slices.Contains(superOpts, "volatile") && !slices.Contains(superOpts, "fsync=volatile") {
		t.Fatalf("the RUN step's root is not a volatile overlay: %q", line)
	}
}

// mountinfoFS is the filesystem type and super options of a
// /proc/self/mountinfo line.
func mountinfoFS(line string) (fsType string, superOpts []string) {
	_, after, ok := strings.Cut(line, " - ")
	f := strings.Fields(after)
	if !ok || len(f) < 3 {
		return "", nil
	}
	return f[0], strings.Split(f[2], ",")
}
