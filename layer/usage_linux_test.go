package layer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "a"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "sub", "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/a", filepath.Join(dir, "link")); err != nil { // 5 bytes
		t.Fatal(err)
	}
	u, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Size != 10005 {
		t.Errorf("Size = %d, want 10005 (the file once, the link's target name)", u.Size)
	}
	var want int64
	for _, p := range []string{"", "sub", "sub/a", "link"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatal(err)
		}
		want += st.Blocks * 512
	}
	if u.Disk != want {
		t.Errorf("Disk = %d, want %d (every inode's blocks once)", u.Disk, want)
	}
	if _, err := DiskUsage(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing tree: no error")
	}
}
