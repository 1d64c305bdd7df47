package builder

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// TestRunLayerLeavesPageCache: once a build has stored its image, the
// large files its RUN step wrote into the new layer are no longer in the
// page cache (their pages are free for the next writes), its small files
// are.
func TestRunLayerLeavesPageCache(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	r := e.mustBuild("FROM localhost/bb:latest\nRUN head -c 1048576 /dev/urandom > /big && echo small > /small\n", Options{})
	dir := e.layerFiles(e.image(r.id), "RUN")
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test store is on tmpfs, whose pages are the files themselves")
	}
	if n := kilntest.ResidentPages(t, filepath.Join(dir, "big")); n != 0 {
		t.Errorf("the RUN step's 1 MiB file has %d pages in the page cache after the build, want none", n)
	}
	if kilntest.ResidentPages(t, filepath.Join(dir, "small")) == 0 {
		t.Error("the RUN step's small file left the page cache")
	}
}
