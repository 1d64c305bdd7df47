package cache

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The store marks tmp/, where snapshots are born, with chattr +T on
// filesystems that have the flag, and the snapshots below it do not inherit
// it (only their own placement is spread, not their subdirectories').
func TestStoreTmpIsTopDir(t *testing.T) {
	root := t.TempDir()
	probe, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = unix.IoctlGetUint32(probe, unix.FS_IOC_GETFLAGS)
	unix.Close(probe)
	if err != nil {
		t.Skipf("the filesystem of %s has no inode flags (%v): nothing to mark", root, err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if f := inodeFlags(t, filepath.Join(root, "tmp")); f&fsTopdirFL == 0 {
		t.Skipf("the filesystem of %s keeps no FS_TOPDIR_FL (flags %#x)", root, f)
	}
	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Discard()
	if err := os.Mkdir(filepath.Join(sn.Dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{sn.Dir, filepath.Join(sn.Dir, "sub")} {
		if f := inodeFlags(t, d); f&fsTopdirFL != 0 {
			t.Errorf("%s inherited FS_TOPDIR_FL (flags %#x)", d, f)
		}
	}
	// Opening again keeps the mark (and does not fail on it).
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if f := inodeFlags(t, filepath.Join(root, "tmp")); f&fsTopdirFL == 0 {
		t.Errorf("tmp/ lost FS_TOPDIR_FL (flags %#x)", f)
	}
}

func inodeFlags(t *testing.T, dir string) uint32 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	f, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
