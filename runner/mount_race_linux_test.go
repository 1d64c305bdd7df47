package runner

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// mountsUnder lists this namespace's mount points at or below dir, deepest
// first.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			got = append(got, fields[4])
		}
	}
	slices.SortFunc(got, func(a, b string) int { return len(b) - len(a) })
	return got
}

// A RUN shares a directory (a cache mount) with another RUN, which swaps a
// component of a nested mount target for a symlink to a host directory
// while the sandbox init sets up its mounts: after the target is resolved,
// and after its mount point is opened. Nothing may be created or mounted on
// the host; the mount lands inside the root. Mounting by path (resolve, then
// MkdirAll and mount(2) on rootfs+path) fails this: the kernel follows the
// new symlink to the host.
func TestMountPlannedRaceStaysInRoot(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, stage := range []string{"resolved", "opened"} {
		t.Run(stage, func(t *testing.T) {
			root, shared, host := t.TempDir(), t.TempDir(), t.TempDir()
			// The racer's symlink names a host directory holding the
			// target (x); inside the root that path exists too, so the
			// mount has somewhere to go.
			for _, d := range []string{filepath.Join(root, "cache"), filepath.Join(root, host), filepath.Join(shared, "sub"), filepath.Join(host, "x")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := MountOverlay(Mount{Type: "bind", Source: shared, Target: filepath.Join(root, "cache"), Options: []string{"bind"}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, m := range mountsUnder(t, root) {
					if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
						t.Errorf("unmount %s: %v", m, err)
					}
				}
			})
			rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(rootfd)

			swapped := false
			testHookMount = func(s string) {
				if s != stage {
					return
				}
				sub := filepath.Join(shared, "sub")
				if err := os.Rename(sub, sub+".old"); err != nil {
					t.Error(err)
				}
				if err := os.Symlink(host, sub); err != nil {
					t.Error(err)
				}
				swapped = true
			}
			defer func() { testHookMount = nil }()

			pm := plannedMount{Mount: Mount{Type: "tmpfs", Source: "tmpfs", Target: "/cache/sub/x"}, dir: true, nested: true}
			if err := mountPlanned(rootfd, pm, &initConfig{}); err != nil {
				t.Fatalf("mountPlanned: %v", err)
			}
			if !swapped {
				t.Fatalf("the hook never ran at %q", stage)
			}
			if ents, err := os.ReadDir(host); err != nil || len(ents) != 1 || ents[0].Name() != "x" {
				t.Errorf("the host's %s holds %v (%v): created outside the root", host, ents, err)
			}
			if ents, err := os.ReadDir(filepath.Join(host, "x")); err != nil || len(ents) != 0 {
				t.Errorf("the host's %s/x holds %v (%v)", host, ents, err)
			}
			if m := mountsUnder(t, host); len(m) != 0 {
				t.Errorf("mounted on the host: %v", m)
			}
			// Where the mount went: the directory the target named when
			// opened, or where the swapped path leads inside the root.
			want := map[string]string{
				"resolved": filepath.Join(root, host, "x"),
				"opened":   filepath.Join(root, "cache", "sub.old", "x"),
			}[stage]
			if !slices.Contains(mountsUnder(t, root), want) {
				t.Errorf("no mount at %s; mounts under the root: %v", want, mountsUnder(t, root))
			}
		})
	}
}
