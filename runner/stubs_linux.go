package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/layer/inroot"
)

// Mount points (/proc, /dev, /sys, /etc/hosts, /etc/resolv.conf, extra mount
// targets and their parents) that the image lacks are created in the merged
// tree, so they land in the upperdir. They must never reach the layer: the
// sandbox init reports what it created (stubEntry) and the parent removes it
// from the upperdir after the run, like BuildKit's MountStubsCleaner, and also
// undoes the side effects: parent directory times, and directories that were
// only copied up from a lower because a stub was created inside them.

// stubEntry is one path touched while creating mount points.
type stubEntry struct {
	Path    string // clean absolute path inside the rootfs
	Created bool   // a stub we created; otherwise an existing ancestor directory of one
	Dir     bool

	// For ancestors: their state in the merged tree before any stub was made.
	InUpper      bool // the directory already existed in the upperdir
	Mode         uint32
	UID, GID     uint32
	Atime, Mtime unix.Timespec
	PostMtime    unix.Timespec // mtime once all stubs were made
}

// stubMaker creates mount points in the merged tree (the root rootfd) and
// records them. Every stat and creation is made relative to a parent
// directory opened inside the root: a tree changed meanwhile by a concurrent
// process (through a shared directory) is never followed outside it.
type stubMaker struct {
	rootfd  int
	upper   string
	entries []stubEntry
	index   map[string]int
}

// MarshalJSON writes Path as base64 of its bytes: a name the image chose
// need not be UTF-8, which a JSON string does not carry exactly (the
// parent would not find the stub to remove it).
func (e stubEntry) MarshalJSON() ([]byte, error) {
	type plain stubEntry
	return json.Marshal(struct {
		plain
		Path []byte
	}{plain(e), []byte(e.Path)})
}

func (e *stubEntry) UnmarshalJSON(data []byte) error {
	type plain stubEntry
	v := struct {
		*plain
		Path []byte
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	e.Path = string(v.Path)
	return nil
}

func newStubMaker(rootfd int, upper string) *stubMaker {
	return &stubMaker{rootfd: rootfd, upper: upper, index: map[string]int{}}
}

// lstat stats the container path p (not following a final symlink) inside
// the root.
func (s *stubMaker) lstat(p string, st *unix.Stat_t) error {
	if p == "/" {
		return unix.Fstat(s.rootfd, st)
	}
	dfd, err := inroot.Open(s.rootfd, inroot.Rel(path.Dir(p)), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	return unix.Fstatat(dfd, path.Base(p), st, unix.AT_SYMLINK_NOFOLLOW)
}

// ensure makes sure the resolved container path p exists, creating it (a
// directory, or an empty file when dir is false) and its missing parents.
func (s *stubMaker) ensure(p string, dir bool) error {
	var st unix.Stat_t
	if err := s.lstat(p, &st); err == nil {
		return nil
	} else if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("stat mount point %s: %w", p, err)
	}
	if err := s.recordAncestor("/"); err != nil {
		return err
	}
	comps := strings.Split(strings.Trim(p, "/"), "/")
	cur := "/"
	for i, c := range comps {
		dfd, err := inroot.Open(s.rootfd, inroot.Rel(cur), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open %s: %w", cur, err)
		}
		next := path.Join(cur, c)
		cur = next
		err = s.ensureIn(dfd, c, next, p, dir || i < len(comps)-1)
		unix.Close(dfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureIn makes sure name (the container path p, on the way to the mount
// point target) exists in the directory dfd: an existing directory is
// recorded as an ancestor, a missing one is created and recorded as a stub.
func (s *stubMaker) ensureIn(dfd int, name, p, target string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("create mount point %s: %s is not a directory", target, p)
		}
		return s.recordAncestor(p)
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if isDir {
		err = unix.Mkdirat(dfd, name, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(dfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", p, err)
	}
	s.index[p] = len(s.entries)
	s.entries = append(s.entries, stubEntry{Path: p, Created: true, Dir: isDir})
	return nil
}

func (s *stubMaker) recordAncestor(p string) error {
	if _, ok := s.index[p]; ok {
		return nil
	}
	var st unix.Stat_t
	if err := s.lstat(p, &st); err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	_, err := os.Lstat(s.upper + p)
	s.index[p] = len(s.entries)
	s.entries = append(s.entries, stubEntry{
		Path: p, Dir: true, InUpper: err == nil,
		Mode: st.Mode, UID: st.Uid, GID: st.Gid, Atime: st.Atim, Mtime: st.Mtim,
	})
	return nil
}

// finish records the ancestors' mtimes after all stubs were made and returns
// the entries. An ancestor it cannot stat keeps a zero PostMtime, which the
// cleanup treats as modified by the process.
func (s *stubMaker) finish() []stubEntry {
	for i := range s.entries {
		e := &s.entries[i]
		var st unix.Stat_t
		if !e.Created && s.lstat(e.Path, &st) == nil {
			e.PostMtime = st.Mtim
		}
	}
	return s.entries
}

// upperPath returns upper+p if every directory above p inside upper is a real
// directory (no symlink can redirect the cleanup outside upper).
func upperPath(upper, p string) (string, bool) {
	cur := upper
	comps := strings.Split(strings.Trim(p, "/"), "/")
	for _, c := range comps[:len(comps)-1] {
		cur += "/" + c
		fi, err := os.Lstat(cur)
		if err != nil || !fi.IsDir() {
			return "", false
		}
	}
	return upper + p, true
}

func dirEmpty(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

func setTimes(p string, atime, mtime unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("restore times of %s: %w", p, err)
	}
	return nil
}

// cleanStubs removes from upper, deepest first, every stub that is still an
// empty file or empty directory, restores the times of the directories that
// held them (to before the stubs if the process did not otherwise modify
// them, else to before the removal), and removes directories that exist in
// upper only because a stub was created inside them.
func cleanStubs(upper string, entries []stubEntry) error {
	type times struct {
		ok           bool
		atime, mtime unix.Timespec
	}
	snaps := make([]times, len(entries))
	for i, e := range entries {
		p, ok := upperPath(upper, e.Path)
		var st unix.Stat_t
		if ok && unix.Lstat(p, &st) == nil {
			snaps[i] = times{true, st.Atim, st.Mtim}
		}
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return depth(entries[b].Path) - depth(entries[a].Path) })

	var errs []error
	for _, i := range order {
		e, snap := entries[i], snaps[i]
		p, ok := upperPath(upper, e.Path)
		if !ok || !snap.ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		empty := false
		if isDir {
			var err error
			if empty, err = dirEmpty(p); err != nil {
				errs = append(errs, fmt.Errorf("read stub dir: %w", err))
				continue
			}
		}
		if e.Created {
			isFile := st.Mode&unix.S_IFMT == unix.S_IFREG
			if (e.Dir && isDir && empty) || (!e.Dir && isFile && st.Size == 0) {
				if err := os.Remove(p); err != nil {
					errs = append(errs, fmt.Errorf("remove stub: %w", err))
				}
			} else if isDir {
				errs = append(errs, setTimes(p, snap.atime, snap.mtime))
			}
			continue
		}
		if !isDir {
			continue
		}
		unmodified := snap.mtime == e.PostMtime
		if unmodified {
			errs = append(errs, setTimes(p, e.Atime, e.Mtime))
		} else {
			errs = append(errs, setTimes(p, snap.atime, snap.mtime))
		}
		if !e.InUpper && unmodified && empty && !layer.IsOpaqueDir(p) &&
			st.Mode == e.Mode && st.Uid == e.UID && st.Gid == e.GID {
			if err := os.Remove(p); err != nil {
				errs = append(errs, fmt.Errorf("remove copied-up dir: %w", err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean mount stubs: %w", err)
	}
	return nil
}
