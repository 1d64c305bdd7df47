package cache

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// holdTrashLock takes the trash lock of root as a deleter would, so that
// no deleter starts; release lets it go without deleting anything.
func holdTrashLock(t *testing.T, root string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, trashLock), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

// waitDeleter waits for the deleter of root to let its lock go, without
// deleting anything itself, and fails unless the trash is empty then.
func waitDeleter(t *testing.T, root string) {
	t.Helper()
	holdTrashLock(t, root)()
	if ents := trashEntries(t, root); len(ents) != 0 {
		t.Fatalf("trash still holds %v once its deleter is done", ents)
	}
}

func trashEntries(t *testing.T, root string) []string {
	t.Helper()
	return kilntest.DirNames(t, filepath.Join(root, trashDir))
}

// deleterPIDs lists the deleters running for root.
func deleterPIDs(root string) []int {
	want := []byte(deleterArg0 + "\x00" + root + "\x00")
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Equal(cmd, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitExit waits for the process to exit (it may have already).
func waitExit(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err != unix.EINTR {
			return
		}
	}
}

// bigTree is a directory of n files in nested directories, one read-only.
func bigTree(t *testing.T, n int) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("d%d/e%d/f%d", i%7, i%13, i)] = strconv.Itoa(i)
	}
	return files
}

// TestDuplicateGoesToTrash: a snapshot that turns out to be a layer the
// store has is not committed; the commit returns while the copy still
// waits in the trash (its deleter held off by the lock), and a deleter,
// the real detached process, empties it later.
func TestDuplicateGoesToTrash(t *testing.T) {
	t.Setenv(DeleterTestEnv, "1")
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	imp := importSame(t, bigTree(t, 300))
	first, err := imp(s)
	if err != nil {
		t.Fatal(err)
	}
	release := holdTrashLock(t, root)
	again, err := imp(s)
	if err != nil {
		t.Fatal(err)
	}
	if again.DiffID != first.DiffID {
		t.Fatalf("same tree, layers %s and %s", first.DiffID, again.DiffID)
	}
	if len(trashEntries(t, root)) != 1 {
		t.Fatalf("trash holds %v, want the duplicate snapshot", trashEntries(t, root))
	}
	if ents, _ := os.ReadDir(s.path("tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries after the commit", len(ents))
	}
	snapshotDigestOK(t, s, first)
	if s.TrashSize() == 0 {
		t.Error("TrashSize is 0 with a snapshot in the trash")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	// The store's next lone user starts a deleter for what is left.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	waitDeleter(t, root)
	if _, err := s2.Layer(first.DiffID); err != nil {
		t.Fatal(err)
	}
	snapshotDigestOK(t, s2, first)
}

// TestTrashAndCheck: trash is not damage; Check reports a clean store
// while the trash is full, and GC moves what it frees there, the prune
// waits for its deletion.
func TestTrashAndCheck(t *testing.T) {
	s := openTestStore(t)
	imp := importSame(t, bigTree(t, 100))
	l, err := imp(s)
	if err != nil {
		t.Fatal(err)
	}
	id := putImage(t, s, l)
	if err := s.Tag("x", id); err != nil {
		t.Fatal(err)
	}
	release := holdTrashLock(t, s.Root())
	if _, err := imp(s); err != nil {
		t.Fatal(err)
	}
	gone := importTree(t, s, map[string]string{"gone": "g"})
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(gone.DiffID); err == nil {
		t.Fatal("GC kept an unreferenced layer")
	}
	if n := len(trashEntries(t, s.Root())); n != 2 {
		t.Fatalf("trash holds %d entries, want the duplicate and the collected layer", n)
	}
	// A small tree is removed at once, without a deleter.
	tiny := importSame(t, map[string]string{"tiny": "t"})
	for range 2 {
		if _, err := tiny(s); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(trashEntries(t, s.Root())); n != 2 {
		t.Fatalf("trash holds %d entries, want the small duplicate removed at once", n)
	}
	rep := check(t, s, CheckOptions{})
	if !rep.Clean() || len(rep.Problems) != 0 {
		t.Errorf("trash reported as problems: %v", rep.Problems)
	}
	if u, err := s.Usage(); err != nil || u.Trash == 0 || u.Trash != s.TrashSize() {
		t.Errorf("usage with a full trash: %+v, %v", u, err)
	}
	release()
	// A prune returns once the space it freed is free.
	if _, err := s.PruneBuildCache(context.Background(), PruneOptions{All: true}, nil); err != nil {
		t.Fatal(err)
	}
	if ents := trashEntries(t, s.Root()); len(ents) != 0 {
		t.Errorf("trash holds %v after prune", ents)
	}
}

// TestKilledTrashing: a process killed in the middle of moving a snapshot
// or a layer into the trash, or a deleter killed halfway, leaves nothing
// the next lone user of the store does not remove, and no layer damaged.
func TestKilledTrashing(t *testing.T) {
	t.Setenv(DeleterTestEnv, "1")
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := importSame(t, bigTree(t, 2000))(s)
	if err != nil {
		t.Fatal(err)
	}
	// A deleter killed whenever the kill finds it.
	if _, err := importSame(t, bigTree(t, 2000))(s); err != nil {
		t.Fatal(err)
	}
	pids := deleterPIDs(root)
	t.Logf("deleters killed: %v", pids)
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
		waitExit(t, pid)
	}
	// Killed between the trash directory and the rename: the snapshot is
	// still in tmp/, an empty directory in the trash.
	os.MkdirAll(filepath.Join(root, "tmp", "snap.1", "fs", "ro"), 0o755)
	os.Chmod(filepath.Join(root, "tmp", "snap.1", "fs", "ro"), 0o500)
	os.MkdirAll(filepath.Join(root, trashDir, "snap.1.123"), 0o700)
	// The same for GC removing a layer: it is still in layers/, whole.
	os.MkdirAll(filepath.Join(root, trashDir, l.DiffID.Encoded()+".456"), 0o700)
	// A deleter killed in a read-only directory.
	ro := filepath.Join(root, trashDir, "x.789", "x", "ro")
	os.MkdirAll(filepath.Join(ro, "d"), 0o755)
	os.Chmod(ro, 0o500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	waitDeleter(t, root)
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries", len(ents))
	}
	snapshotDigestOK(t, s2, l)
	if rep := check(t, s2, CheckOptions{}); !rep.Clean() {
		t.Errorf("problems after killed trashing: %v", rep.Problems)
	}
}

// TestStoreRemovedUnderDeleter: removing a store whose deleter is at work
// (what a test's cleanup does) neither fails nor leaves the deleter
// running.
func TestStoreRemovedUnderDeleter(t *testing.T) {
	t.Setenv(DeleterTestEnv, "1")
	root, err := os.MkdirTemp("", "kiln-trash-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	imp := importSame(t, bigTree(t, 3000))
	if _, err := imp(s); err != nil {
		t.Fatal(err)
	}
	if _, err := imp(s); err != nil {
		t.Fatal(err)
	}
	pids := deleterPIDs(root)
	t.Logf("deleters at work: %v", pids)
	s.Close()
	if err := os.RemoveAll(root); err != nil {
		t.Fatalf("remove the store under its deleter: %v", err)
	}
	for _, pid := range pids {
		waitExit(t, pid)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("store root still there: %v", err)
	}
}
