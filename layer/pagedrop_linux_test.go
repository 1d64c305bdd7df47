package layer

import (
	"bytes"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// TestWriteDiffDropPages: with DiffOptions.DropPages the differ holds the
// files of at least dropPagesMin bytes, up to the PageDrops' bound, and
// writes the same tar as without; once the files are synced, Drop takes
// the large file's pages out of the page cache and leaves the small
// file's.
func TestWriteDiffDropPages(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	must(t, unix.Statfs(dir, &fs))
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test directory is on tmpfs, whose pages are the files themselves")
	}
	writeFile(t, dir, "a-large", string(bytes.Repeat([]byte("x"), dropPagesMin)))
	writeFile(t, dir, "b-small", "small\n")
	writeFile(t, dir, "c-large", string(bytes.Repeat([]byte("y"), 2*dropPagesMin)))
	large, small, second := filepath.Join(dir, "a-large"), filepath.Join(dir, "b-small"), filepath.Join(dir, "c-large")

	plain := writeDiffBytes(t, dir, DiffOptions{})
	drops := NewPageDrops(1)
	if got := writeDiffBytes(t, dir, DiffOptions{DropPages: drops}); !bytes.Equal(got, plain) {
		t.Fatal("the tar with DropPages differs from the one without")
	}
	if drops.Len() != 1 {
		t.Fatalf("held %d files, want 1 (a-large; c-large is beyond the bound, b-small too small)", drops.Len())
	}
	var held, want unix.Stat_t
	must(t, unix.Fstat(drops.fds[0], &held))
	must(t, unix.Stat(large, &want))
	if held.Ino != want.Ino {
		t.Fatalf("held inode %d, want a-large's %d", held.Ino, want.Ino)
	}

	// The pages are clean once on disk: syncfs, as the store's commit does.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	err = unix.Syncfs(fd)
	unix.Close(fd)
	must(t, err)
	if kilntest.ResidentPages(t, large) == 0 || kilntest.ResidentPages(t, small) == 0 {
		t.Skip("the files just written and read are not in the page cache: nothing to show")
	}
	drops.Drop()
	if n := kilntest.ResidentPages(t, large); n != 0 {
		t.Errorf("a-large has %d pages in the page cache after Drop, want 0", n)
	}
	if kilntest.ResidentPages(t, small) == 0 || kilntest.ResidentPages(t, second) == 0 {
		t.Error("Drop took the pages of a file it did not hold")
	}
	if drops.Len() != 0 {
		t.Errorf("Drop left %d files held", drops.Len())
	}
}
