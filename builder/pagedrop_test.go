package builder

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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
	if n := residentPages(t, filepath.Join(dir, "big")); n != 0 {
		t.Errorf("the RUN step's 1 MiB file has %d pages in the page cache after the build, want none", n)
	}
	if residentPages(t, filepath.Join(dir, "small")) == 0 {
		t.Error("the RUN step's small file left the page cache")
	}
}

// residentPages is the number of pages of the file at path in the page
// cache (mincore(2) of a mapping that touches none of them).
func residentPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
