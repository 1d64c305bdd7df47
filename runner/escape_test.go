package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BuildKit's CVE-2024-23652: a RUN swaps the parent of a mount stub for a
// symlink to a host directory; removing the stubs after the run must not
// follow it (the host directory holds an empty b/c, just what the cleanup
// removes, with old times, just what it restores).
func TestStubCleanupStaysInUpper(t *testing.T) {
	for name, swap := range map[string]string{
		"top":    "mv /a /a.old && ln -s $HOSTDIR /a",
		"middle": "mv /a/b /a/b.old && ln -s $HOSTDIR/b /a/b",
	} {
		t.Run(name, func(t *testing.T) {
			host := t.TempDir()
			canary := filepath.Join(host, "b", "c")
			if err := os.MkdirAll(canary, 0o755); err != nil {
				t.Fatal(err)
			}
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			for _, d := range []string{canary, filepath.Dir(canary), host} {
				if err := os.Chtimes(d, old, old); err != nil {
					t.Fatal(err)
				}
			}
			s := newSpec(t, true, "sh", "-c", swap)
			s.Env = []string{"HOSTDIR=" + host}
			s.ExtraMounts = []Mount{{Type: "tmpfs", Source: "tmpfs", Target: "/a/b/c"}}
			mustRun(t, s)
			for _, d := range []string{canary, filepath.Dir(canary), host} {
				fi, err := os.Stat(d)
				if err != nil {
					t.Fatalf("the host's %s: %v", d, err)
				}
				if !fi.ModTime().Equal(old) {
					t.Errorf("the host's %s: mtime changed to %v", d, fi.ModTime())
				}
			}
		})
	}
}
