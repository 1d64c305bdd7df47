package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/proc"
	"github.com/kiln-build/kiln/internal/rootless"
)

// The trash: what the store no longer references (a duplicate snapshot of
// a --no-cache re-run, the layers a prune or rmi frees, a removed
// container's directory, the snapshot of a failed step, the debris of
// killed processes) leaves its place in one rename into trash/, on the same
// filesystem, and is deleted from there by a deleter: this same binary
// re-executed (see IsDeleter), detached, at idle I/O priority and nice 19,
// which exits once the trash is empty. Removing a tree of thousands of
// files costs seconds of I/O wait on a slow disk; no command waits for it
// unless it asks to (WaitTrash: prune, tests).
//
// Nothing in trash/ is ever looked at again but by a deleter: every entry
// is a whole tree that no record names, so a crash at any point (mid-rename,
// mid-deletion, of the deleter or its starter) leaves garbage that the next
// deleter removes. A deleter is started by whatever puts something into the
// trash, and by a process that opens the store alone and finds the trash
// not empty (a deleter was killed).
//
// One deleter at a time serves a store: it holds trash.lock while it
// deletes. Its starter takes that lock first and hands it over (the
// deleter inherits the locked descriptor), so none starts while another
// runs. A deleter that has emptied the trash lets the lock go and looks
// once more: whatever was moved in before a starter found the lock taken
// is seen then, by this deleter or by the one that took the lock.

const (
	trashDir  = "trash"
	trashLock = "trash.lock"
	// deleterArg0 marks a re-execution as a deleter.
	deleterArg0 = "kiln-trash"
	// DeleterTestEnv set to 1 says that the running test binary dispatches
	// IsDeleter in its TestMain, so that it may be re-executed as a deleter.
	// A test binary without it deletes the trash in goroutines of its own
	// (which Close waits for) instead: re-executed, it would run its tests.
	DeleterTestEnv = "KILN_TEST_DELETER"
)

// Trash moves path, a file or tree in the store's filesystem that nothing
// references any more, into the trash and makes sure a deleter removes it.
// The caller no longer sees path once Trash returns, whatever the error
// (which only says that the deleter could not be started: the next one
// removes it).
//
// A small tree (a container that wrote nothing, the layer of one RUN echo)
// is removed at once from the trash: that is quicker than starting a
// deleter.
func (s *Store) Trash(path string) error {
	del, err := s.TrashLater(path)
	if err != nil {
		return err
	}
	return del()
}

// TrashLater is Trash in two steps, for a caller with something more
// urgent in between: path goes into the trash now; del, called before the
// store is closed, deletes it or makes sure a deleter does (its error as
// Trash's).
func (s *Store) TrashLater(path string) (del func() error, err error) {
	aside, err := s.moveToTrash(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return func() error { return nil }, nil
		}
		return nil, fmt.Errorf("move %s to the trash: %w", path, err)
	}
	return func() error {
		if small(aside) && removeAll(aside) == nil {
			return nil
		}
		return s.startDeleter()
	}, nil
}

// smallTree is the most entries a tree that Trash removes at once has.
const smallTree = 64

var errBig = errors.New("big tree")

// small reports whether the tree at path has at most smallTree entries.
func small(path string) bool {
	n := 0
	err := filepath.WalkDir(path, func(_ string, _ fs.DirEntry, err error) error {
		if n++; err != nil || n > smallTree {
			return errBig
		}
		return nil
	})
	return err == nil
}

// moveToTrash renames path into a fresh directory of the trash, which it
// returns. A kill between the two leaves an empty directory there, which
// is trash too.
func (s *Store) moveToTrash(path string) (string, error) {
	if _, err := os.Lstat(path); err != nil {
		return "", err
	}
	aside, err := os.MkdirTemp(s.path(trashDir), filepath.Base(path)+".")
	if err != nil {
		return "", err
	}
	if err := os.Rename(path, filepath.Join(aside, "x")); err != nil {
		os.Remove(aside)
		return "", err
	}
	return aside, nil
}

// trashEmpty reports whether the trash holds nothing (or is gone).
func trashEmpty(root string) bool {
	d, err := os.Open(filepath.Join(root, trashDir))
	if err != nil {
		return true
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) == 0
}

// startDeleter starts a deleter for the store unless one runs: one that
// holds the trash lock has yet to look at the trash again, and will see
// what the caller put there.
func (s *Store) startDeleter() error {
	f, err := os.OpenFile(s.path(trashLock), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("start trash deleter: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return nil
	} else if err != nil {
		return fmt.Errorf("start trash deleter: %w", err)
	}
	if testing.Testing() && os.Getenv(DeleterTestEnv) != "1" {
		return s.deleteInBackground(f)
	}
	// The deleter's fd 3 is the trash lock, held.
	env := append([]string{"GOMAXPROCS=1"}, rootless.Environ()...)
	if err := proc.StartDetached(deleterArg0, env, []*os.File{f}, s.root); err != nil {
		return fmt.Errorf("start trash deleter: %w", err)
	}
	return nil
}

// deleteInBackground empties the trash in a goroutine that Close waits for,
// holding the trash lock as a deleter would.
func (s *Store) deleteInBackground(lock *os.File) error {
	dup, err := unix.FcntlInt(lock.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start trash deleter: %w", err)
	}
	held := os.NewFile(uintptr(dup), lock.Name())
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer held.Close()
		emptyTrash(s.root, held)
	}()
	return nil
}

// emptyTrash removes everything in the trash of the store root, holding
// the trash lock as lock, and returns once the trash is empty and the lock
// released, or another deleter took over.
func emptyTrash(root string, lock *os.File) error {
	dir := filepath.Join(root, trashDir)
	for {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the store is gone
		}
		if err != nil {
			return err
		}
		var errs []error
		for _, e := range ents {
			if err := removeAll(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			// What cannot be removed stays for the next deleter; looping
			// on it would never end.
			return errors.Join(errs...)
		}
		if len(ents) > 0 {
			continue
		}
		if err := flock(lock, unix.LOCK_UN); err != nil {
			return err
		}
		if trashEmpty(root) {
			return nil
		}
		if err := flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return nil // another deleter has it
		}
	}
}

// WaitTrash returns once the trash of the store root is empty: it waits for
// the deleter at work (takes its lock) and deletes what is left itself,
// which a killed deleter may have left. Prune uses it so that the space it
// reports is free when it returns; tests use it before removing a store.
func WaitTrash(root string) error {
	f, err := os.OpenFile(filepath.Join(root, trashLock), os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if trashEmpty(root) {
			return nil // no deleter ever ran, and there is nothing to delete
		}
		f, err = os.OpenFile(filepath.Join(root, trashLock), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return fmt.Errorf("wait for the trash: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("wait for the trash: %w", err)
	}
	if err := emptyTrash(root, f); err != nil {
		return fmt.Errorf("empty the trash: %w", err)
	}
	return nil
}

// TrashSize is the space the trash occupies on disk: freed space that the
// deleter has yet to give back.
func (s *Store) TrashSize() int64 { return SpaceOnDisk(s.path(trashDir)) }

// IsDeleter reports whether this process was re-executed as a trash
// deleter; main() (and the TestMain of a test binary that sets
// DeleterTestEnv) must then call Delete before anything else.
func IsDeleter() bool { return len(os.Args) > 0 && os.Args[0] == deleterArg0 }

// Delete is the deleter's main: it empties the trash of the store root
// named by its argument, holding the trash lock it inherited as fd 3, at
// idle I/O priority and the lowest CPU priority, and exits.
func Delete() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, deleterArg0+": bad arguments")
		os.Exit(2)
	}
	// Deletion yields the disk and the CPU to everything else: an idle
	// I/O class (a hint: only schedulers with classes, BFQ and mq-deadline,
	// honour it) and nice 19.
	unix.Setpriority(unix.PRIO_PROCESS, 0, 19)
	unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift)
	lock := os.NewFile(3, trashLock)
	if lock == nil || flock(lock, unix.LOCK_EX|unix.LOCK_NB) != nil {
		fmt.Fprintln(os.Stderr, deleterArg0+": not started holding the trash lock")
		os.Exit(2)
	}
	if err := emptyTrash(os.Args[1], lock); err != nil {
		fmt.Fprintln(os.Stderr, deleterArg0+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ioprio_set(2) values of <linux/ioprio.h>.
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)
