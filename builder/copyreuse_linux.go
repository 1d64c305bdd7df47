package builder

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// A re-run COPY (one source file changed, say) finds most of its files
// already in the snapshot its previous run made: same content, same mode,
// owner and mtime. Those are hard-linked from that snapshot into the new
// one instead of written again. Snapshots are immutable, and a link that
// needs no metadata change leaves the old snapshot as it was. The layer tar
// stays byte for byte what a full copy gives: the differ only makes
// hard-link entries for names of one inode inside the same layer, and a
// reused inode is linked once per layer, from a file that was not a hard
// link in the context.

// reuse is what a copy plan may reuse: the snapshot of the previous run of
// the same COPY (same parent step, same instruction) and the links made.
type reuse struct {
	prev string // that snapshot's directory
	// links are the files to link once the layer's upper directory is no
	// longer mounted (nothing is written under a mounted overlay's back).
	links []reuseLink
	// files are the plan's files found unchanged in the previous snapshot:
	// linked instead of copied.
	files map[*contextFile]reuseLink
}

type reuseLink struct {
	rel string    // in both snapshots
	ino [2]uint64 // device and inode checked in the previous one
}

// file is how f is linked from the previous snapshot, if it is.
func (r *reuse) file(f *contextFile) (reuseLink, bool) {
	if r == nil {
		return reuseLink{}, false
	}
	l, ok := r.files[f]
	return l, ok
}

// previousCopy returns the snapshot the last run of this COPY made, when the
// build cache is in use (not under --no-cache: that one copies everything)
// and times are not clamped afterwards (ClampTimes would change the shared
// inodes).
func (b *build) previousCopy(st *stage, createdBy string) *reuse {
	if b.opts.NoCache || b.noCacheStage(st) || st.epoch != nil {
		return nil
	}
	if d, ok := b.previousLayer(st, createdBy); ok {
		return &reuse{prev: b.store.SnapshotDir(d)}
	}
	return nil
}

// previousLayer is the layer of the last run of this COPY (same parent
// step, same instruction), according to the build cache, if the store has
// it and it is not empty.
func (b *build) previousLayer(st *stage, createdBy string) (digest.Digest, bool) {
	if !b.store.HasCacheChildren(st.cacheKey) {
		return "", false
	}
	rec, ok, known := b.store.LastCacheRecord(st.cacheKey, createdBy)
	if !known { // a store of an older kiln: look through every record
		recs, err := b.store.CacheRecords()
		if err != nil {
			return "", false
		}
		for _, r := range recs { // most recently used first
			if r.Parent == st.cacheKey && r.Inputs.Instruction == createdBy && r.DiffID != "" {
				rec, ok = r.CacheRecord, true
				break
			}
		}
	}
	if !ok || rec.DiffID == "" {
		return "", false
	}
	if l, err := b.store.Layer(rec.DiffID); err == nil && !l.EmptyLayer() {
		return rec.DiffID, true
	}
	return "", false
}

// reusable marks (in reuse.files) the files of the plan that the
// previous snapshot holds identically, checking each candidate's metadata
// and its content against the source's digest (read in parallel:
// reading is much cheaper than writing).
//
// Only a directory source's files qualify, when the directory lands where
// its top entry is written (so every file's parent directory is in the new
// upper directory), under a target no other file of the plan takes.
func (p *copyPlan) reusable(emitTop []bool) {
	if p.reuse == nil || p.parents {
		return
	}
	targets := map[string]int{}
	for _, it := range p.items {
		for _, f := range it.files {
			targets[path.Join(it.target, f.rel)]++
		}
	}
	type cand struct {
		f   *contextFile
		rel string
	}
	var cands []cand
	for i, it := range p.items {
		if it.top == nil || !emitTop[i] || !it.src.info.IsDir() {
			continue
		}
		top := strings.Trim(path.Clean(it.top.Name), "/.")
		for _, f := range it.files {
			if f.host == "" || !f.fi().Mode().IsRegular() || f.st.Nlink != 1 || !f.hashed() || f.rel == "" ||
				targets[path.Join(it.target, f.rel)] != 1 {
				continue
			}
			cands = append(cands, cand{f, path.Join(top, f.rel)})
		}
	}
	prev, err := unix.Open(p.reuse.prev, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(prev)
	// Each candidate is opened beneath the snapshot without following any
	// symlink, its metadata compared, and its content hashed, on every core:
	// reading is much cheaper than writing.
	var mu sync.Mutex
	inodes := map[[2]uint64]bool{}
	p.reuse.files = map[*contextFile]reuseLink{}
	work := make(chan cand)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(cands)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := copyBufPool.Get().(*[]byte)
			defer copyBufPool.Put(buf)
			for c := range work {
				fd, err := openBeneath(prev, c.rel, unix.O_RDONLY|unix.O_NOFOLLOW)
				if err != nil {
					continue
				}
				var st unix.Stat_t
				ok := unix.Fstat(fd, &st) == nil && p.sameMeta(c.f, &st)
				if ok {
					n, err := unix.Flistxattr(fd, nil)
					ok = err == nil && n == 0
				}
				if ok {
					sum, err := hashFD(fd, *buf)
					ok = err == nil && sum == c.f.sum
				}
				unix.Close(fd)
				if !ok {
					continue
				}
				ino := [2]uint64{st.Dev, st.Ino}
				mu.Lock()
				if !inodes[ino] {
					inodes[ino] = true
					p.reuse.files[c.f] = reuseLink{rel: c.rel, ino: ino}
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range cands {
		work <- c
	}
	close(work)
	wg.Wait()
}

// openBeneath opens rel below dirfd, refusing symlinks on the way and
// anything outside dirfd.
func openBeneath(dirfd int, rel string, flags int) (int, error) {
	return unix.Openat2(dirfd, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
}

// hashFD is the sha256 of what is left to read in fd.
func hashFD(fd int, buf []byte) (sum [32]byte, err error) {
	h := sha256.New()
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return sum, err
		}
		if n == 0 {
			h.Sum(sum[:0])
			return sum, nil
		}
		h.Write(buf[:n])
	}
}

// sameMeta says whether the existing file st has what copying f would give
// it: type, size, permissions, owner and mtime to the nanosecond.
func (p *copyPlan) sameMeta(f *contextFile, st *unix.Stat_t) bool {
	hdr, err := p.header(f, "x")
	if err != nil {
		return false
	}
	mt := hdr.ModTime
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == hdr.Size &&
		int64(st.Mode&0o7777) == hdr.Mode && int(st.Uid) == hdr.Uid && int(st.Gid) == hdr.Gid &&
		st.Mtim.Sec == mt.Unix() && st.Mtim.Nsec == int64(mt.Nanosecond())
}

// link makes the links of the plan's reused files in upper, the new
// snapshot's directory, no longer mounted: each the very inode checked
// (reopened beneath the previous snapshot, without symlinks), into its
// directory opened the same way. A directory keeps the times the copy gave
// it: linking into it must not show as a change of its own.
func (r *reuse) link(upper string) error {
	prev, err := unix.Open(r.prev, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reuse unchanged files: %w", &os.PathError{Op: "open", Path: r.prev, Err: err})
	}
	defer unix.Close(prev)
	root, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reuse unchanged files: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(root)
	type dir struct {
		fd           int
		atime, mtime unix.Timespec
	}
	dirs := map[string]*dir{}
	var order []string
	defer func() {
		for _, d := range dirs {
			unix.Close(d.fd)
		}
	}()
	for _, l := range r.links {
		parent, base := path.Split(l.rel)
		d := dirs[parent]
		if d == nil {
			fd, err := openBeneath(root, "./"+parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				return fmt.Errorf("reuse unchanged files: %w", &os.PathError{Op: "open", Path: filepath.Join(upper, parent), Err: err})
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return fmt.Errorf("reuse unchanged files: %w", &os.PathError{Op: "fstat", Path: filepath.Join(upper, parent), Err: err})
			}
			d = &dir{fd: fd, atime: st.Atim, mtime: st.Mtim}
			dirs[parent] = d
			order = append(order, parent)
		}
		if err := linkInode(prev, l, d.fd, base); err != nil {
			return fmt.Errorf("reuse unchanged files: link %s: %w", l.rel, err)
		}
	}
	for _, parent := range order {
		d := dirs[parent]
		ts := []unix.Timespec{d.atime, d.mtime}
		if err := unix.UtimesNanoAt(d.fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("reuse unchanged files: %w", &os.PathError{Op: "utimensat", Path: filepath.Join(upper, parent), Err: err})
		}
	}
	return nil
}

// linkInode links l's file of the previous snapshot as base in dirfd, if it
// is still the inode that was checked.
func linkInode(prev int, l reuseLink, dirfd int, base string) error {
	fd, err := openBeneath(prev, l.rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Dev != l.ino[0] || st.Ino != l.ino[1] {
		return fmt.Errorf("%s changed in the previous snapshot", l.rel)
	}
	return unix.Linkat(fd, "", dirfd, base, unix.AT_EMPTY_PATH)
}
