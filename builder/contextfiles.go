package builder

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
)

// contextFile is one file a COPY copies. A COPY of 100,000 files holds
// 100,000 of them until its layer is made: only what the copy, the cache key
// and the stat cache read is kept (a stat's fields, not unix.Stat_t's 144
// bytes; the content's sha256, not its 71-byte text).
type contextFile struct {
	host string // absolute host path ("" for a heredoc)
	rel  string // slash path below its source ("" for the source itself)
	st   fileStat
	sum  [32]byte  // sha256 of a regular file's content; zero while not known (no content hashes to it)
	more *fileMore // a symlink's target, a heredoc
}

// fileMore is what only some files have.
type fileMore struct {
	link string      // a symlink's target
	data []byte      // a heredoc's content
	info fs.FileInfo // a heredoc's
}

// fi is the file's fs.FileInfo: a heredoc's, or the file's as os.Lstat
// gives it (made from its stat, without an allocation).
func (f *contextFile) fi() fs.FileInfo {
	if f.more != nil && f.more.info != nil {
		return f.more.info
	}
	return (*fileInfo)(f)
}

// symlink is a symlink's target, else "".
func (f *contextFile) symlink() string {
	if f.more == nil {
		return ""
	}
	return f.more.link
}

// heredoc is a heredoc's content, nil for a file from the host.
func (f *contextFile) heredoc() []byte {
	if f.more == nil {
		return nil
	}
	return f.more.data
}

func (f *contextFile) hashed() bool { return f.sum != [32]byte{} }

// digest is the content digest of a regular file, "" while not known.
func (f *contextFile) digest() digest.Digest {
	if !f.hashed() {
		return ""
	}
	return digest.Digest(f.appendDigest(make([]byte, 0, len("sha256:")+64)))
}

// appendDigest appends digest's text.
func (f *contextFile) appendDigest(b []byte) []byte {
	if !f.hashed() {
		return b
	}
	return hex.AppendEncode(append(b, "sha256:"...), f.sum[:])
}

// setDigest records d, a sha256 digest, as the content's digest.
func (f *contextFile) setDigest(d digest.Digest) error {
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%s: not a sha256 digest", d)
	}
	if n, err := hex.Decode(f.sum[:], []byte(d.Encoded())); err != nil || n != len(f.sum) {
		return fmt.Errorf("%s: not a sha256 digest", d)
	}
	return nil
}

func (f *contextFile) setSum(sum [32]byte) { f.sum = sum }

// fileStat is what a COPY uses of a file's lstat: its type and mode, owner,
// size, links, device, identity and ctime (for the stat cache) and mtime.
// Not its atime: the copy gives a file its mtime for both.
type fileStat struct {
	Mode, Uid, Gid, Nlink uint32
	MtimNsec, CtimNsec    uint32
	Size                  int64
	Ino, Dev, Rdev        uint64
	MtimSec, CtimSec      int64
}

func newFileStat(st *unix.Stat_t) fileStat {
	return fileStat{
		Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Nlink: uint32(min(st.Nlink, 1<<32-1)),
		MtimNsec: uint32(st.Mtim.Nsec), CtimNsec: uint32(st.Ctim.Nsec),
		Size: st.Size, Ino: st.Ino, Dev: st.Dev, Rdev: st.Rdev,
		MtimSec: st.Mtim.Sec, CtimSec: st.Ctim.Sec,
	}
}

// unix is the stat as unix.Lstat gives it, with the fields kept (the mtime
// as the atime).
func (s *fileStat) unix() unix.Stat_t {
	mtim := unix.Timespec{Sec: s.MtimSec, Nsec: int64(s.MtimNsec)}
	return unix.Stat_t{
		Mode: s.Mode, Uid: s.Uid, Gid: s.Gid, Nlink: uint64(s.Nlink),
		Size: s.Size, Ino: s.Ino, Dev: s.Dev, Rdev: s.Rdev,
		Atim: mtim, Mtim: mtim, Ctim: unix.Timespec{Sec: s.CtimSec, Nsec: int64(s.CtimNsec)},
	}
}

// walkSource lists a source: itself for a file, its contents for a
// directory, in lexical order, leaving out what ignore excludes (a
// .dockerignore; paths are matched relative to its root).
//
// Directories are read on every core, each with getdents64 into one large
// buffer, opened beneath the source without following symlinks, and each
// entry is stat'ed once relative to its directory's descriptor (no path
// lookup from the root per file); the listing is put in order afterwards.
func walkSource(src source, filters ...*ignorer) ([]*contextFile, error) {
	if !src.info.IsDir() {
		f, err := statFile(src.path, "", src.info)
		if err != nil {
			return nil, err
		}
		return []*contextFile{f}, nil
	}
	root, err := unix.Open(src.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: src.path, Err: err}
	}
	defer unix.Close(root)
	top := &walkDir{}
	w := &walker{root: root, rootPath: src.path, filters: filters, tasks: []walkTask{{node: top}}}
	w.cond = sync.NewCond(&w.mu)
	var wg sync.WaitGroup
	for range max(1, min(runtime.NumCPU(), 4)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work(make([]byte, 64<<10))
		}()
	}
	wg.Wait()
	if w.err != nil {
		return nil, w.err
	}
	return top.flatten(nil), nil
}

// walkDir is a directory read by the walk: its entries in name order.
type walkDir struct {
	ents []walkEntry
}

type walkEntry struct {
	f        *contextFile
	excluded bool     // but looked into: an exception may bring some back
	sub      *walkDir // a directory's contents
}

type walkTask struct {
	node *walkDir
	rel  string // below the source ("" for itself)
}

// walker is the state of one walkSource: a stack of directories to read,
// shared by its workers.
type walker struct {
	root     int // the source directory
	rootPath string
	filters  []*ignorer

	mu     sync.Mutex
	cond   *sync.Cond
	tasks  []walkTask
	active int // tasks being read
	err    error
}

func (w *walker) work(buf []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.tasks) == 0 && w.active > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.tasks) == 0 || w.err != nil {
			w.cond.Broadcast()
			return
		}
		t := w.tasks[len(w.tasks)-1]
		w.tasks = w.tasks[:len(w.tasks)-1]
		w.active++
		w.mu.Unlock()
		subs, err := w.readDir(t, buf)
		w.mu.Lock()
		w.active--
		if err != nil && w.err == nil {
			w.err = err
		}
		w.tasks = append(w.tasks, subs...)
		w.cond.Broadcast()
	}
}

// readDir reads one directory into its node and returns the
// subdirectories to read.
func (w *walker) readDir(t walkTask, buf []byte) ([]walkTask, error) {
	dirPath := w.rootPath
	fd := w.root
	if t.rel != "" {
		dirPath = joinHost(w.rootPath, t.rel)
		var err error
		fd, err = unix.Openat2(w.root, t.rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.ENOSYS || err == unix.EPERM {
			// No openat2 (a kernel before 5.6, or a seccomp filter that
			// refuses it): the last component at least is not followed.
			fd, err = unix.Openat(w.root, t.rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: dirPath, Err: err}
		}
		defer unix.Close(fd)
	}
	names, err := readNames(fd, dirPath, buf)
	if err != nil {
		return nil, err
	}
	files := make([]contextFile, len(names)) // one allocation for the directory
	t.node.ents = make([]walkEntry, 0, len(names))
	var subs []walkTask
	for i, name := range names {
		f := &files[i]
		f.host = joinHost(dirPath, name)
		f.rel = f.host[len(f.host)-len(name):]
		if t.rel != "" {
			f.rel = f.host[len(f.host)-len(t.rel)-1-len(name):]
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, &os.PathError{Op: "lstat", Path: f.host, Err: err}
		}
		f.st = newFileStat(&st)
		isDir := f.st.Mode&unix.S_IFMT == unix.S_IFDIR
		excluded, descend := false, isDir
		for _, ig := range w.filters {
			if x, d := ig.check(f.host, isDir); x {
				excluded, descend = true, descend && d
			}
		}
		if excluded && !descend {
			continue
		}
		if f.st.Mode&unix.S_IFMT == unix.S_IFLNK {
			link, err := readlinkat(fd, name)
			if err != nil {
				return nil, &os.PathError{Op: "readlink", Path: f.host, Err: err}
			}
			f.more = &fileMore{link: link}
		}
		e := walkEntry{f: f, excluded: excluded}
		if isDir {
			e.sub = &walkDir{}
			subs = append(subs, walkTask{node: e.sub, rel: f.rel})
		}
		t.node.ents = append(t.node.ents, e)
	}
	slices.Reverse(subs) // popped from the stack in name order
	return subs, nil
}

// flatten appends d's listing to out, depth first in name order.
func (d *walkDir) flatten(out []*contextFile) []*contextFile {
	for _, e := range d.ents {
		mark := len(out)
		if !e.excluded {
			out = append(out, e.f)
		}
		if e.sub != nil {
			out = e.sub.flatten(out)
			// An excluded directory still holds what an exception
			// brings back: keep it as their parent.
			if e.excluded && len(out) > mark {
				out = slices.Insert(out, mark, e.f)
			}
		}
	}
	return out
}

// readNames returns the names in directory fd, sorted.
func readNames(fd int, dir string, buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

func joinHost(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// fileInfo is a walked file's fs.FileInfo, read from its stat: the same
// values os.Lstat gives, without a second stat or an allocation.
type fileInfo contextFile

func (fi *fileInfo) Name() string {
	if fi.rel != "" {
		return path.Base(fi.rel)
	}
	return filepath.Base(fi.host)
}

func (fi *fileInfo) Size() int64 { return fi.st.Size }

func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.MtimSec, int64(fi.st.MtimNsec)) }
func (fi *fileInfo) IsDir() bool        { return fi.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Sys is the stat as os.Lstat's FileInfo has it (archive/tar reads it),
// with the fields kept: unix.Stat_t is syscall.Stat_t's layout, generated
// from the same header.
func (fi *fileInfo) Sys() any {
	st := fi.st.unix()
	return (*syscall.Stat_t)(unsafe.Pointer(&st))
}

func statFile(host, rel string, info fs.FileInfo) (*contextFile, error) {
	f := &contextFile{host: host, rel: rel}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	f.st = newFileStat(&st)
	if info.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(host)
		if err != nil {
			return nil, err
		}
		f.more = &fileMore{link: link}
	}
	return f, nil
}

// digestsFromStatCache fills in the digests the stat cache vouches for,
// reading nothing.
func digestsFromStatCache(files []*contextFile, sc *cache.StatCache) {
	for _, f := range files {
		if !f.hashed() && f.fi().Mode().IsRegular() {
			f.digestFromStatCache(sc)
		}
	}
}

// hashFiles fills in the content digest of every regular file, from the stat
// cache where it vouches for the file, else by reading it (in parallel).
func hashFiles(files []*contextFile, sc *cache.StatCache) error {
	var todo []*contextFile
	for _, f := range files {
		if f.hashed() || !f.fi().Mode().IsRegular() || f.digestFromStatCache(sc) {
			continue
		}
		todo = append(todo, f)
	}
	if len(todo) == 0 {
		return nil
	}
	work := make(chan *contextFile)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := copyBufPool.Get().(*[]byte)
			defer copyBufPool.Put(buf)
			for f := range work {
				sum, err := hashFile(f.host, *buf)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				f.setSum(sum)
				f.addToStatCache(sc)
			}
		}()
	}
	for _, f := range todo {
		work <- f
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// hashFile hashes the regular file at path through buf (not a buffer of its
// own per file, as io.Copy from an *os.File would), never following a
// symlink swapped in since the walk.
func hashFile(path string, buf []byte) ([32]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return [32]byte{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	sum, err := hashFD(fd, buf)
	if err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	return sum, nil
}

// digestFromStatCache takes the file's digest from the stat cache if it
// vouches for it.
func (f *contextFile) digestFromStatCache(sc *cache.StatCache) bool {
	st := f.st.unix()
	d, ok := sc.Lookup(f.host, &st)
	return ok && f.setDigest(d) == nil
}

// addToStatCache records the file's digest in the stat cache.
func (f *contextFile) addToStatCache(sc *cache.StatCache) {
	st := f.st.unix()
	sc.Add(f.host, &st, f.digest())
}

// unixPerm is a FileMode's permission bits with setuid, setgid and sticky as
// in a stat mode.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unix.Stat_t and syscall.Stat_t must stay the same struct for fileInfo.Sys.
var _ = [1]struct{}{}[unsafe.Sizeof(unix.Stat_t{})-unsafe.Sizeof(syscall.Stat_t{})]
