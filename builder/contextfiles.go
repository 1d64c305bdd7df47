package builder

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
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

// contextFile is one file a COPY copies.
type contextFile struct {
	host   string // absolute host path ("" for a heredoc)
	rel    string // slash path below its source ("" for the source itself)
	info   fs.FileInfo
	st     unix.Stat_t
	link   string        // symlink target
	data   []byte        // a heredoc's content
	digest digest.Digest // content of a regular file, once known
	// reuseRel, when set, is the same file's path in the previous snapshot
	// of this COPY (and in the new one), inode reuseIno, linked instead of
	// copied (see copyreuse_linux.go).
	reuseRel string
	reuseIno [2]uint64
}

// walkSource lists a source: itself for a file, its contents for a
// directory, in lexical order, leaving out what ignore excludes (a
// .dockerignore; paths are matched relative to its root).
//
// A directory is read with getdents64 into one large buffer and each entry
// is stat'ed once, relative to its directory's descriptor (no path lookup
// from the root per file); subdirectories are opened beneath their parent
// without following symlinks.
func walkSource(src source, filters ...*ignorer) ([]*contextFile, error) {
	if !src.info.IsDir() {
		f, err := statFile(src.path, "", src.info)
		if err != nil {
			return nil, err
		}
		return []*contextFile{f}, nil
	}
	fd, err := unix.Open(src.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: src.path, Err: err}
	}
	defer unix.Close(fd)
	w := walker{filters: filters, buf: make([]byte, 64<<10)}
	return w.out, w.walk(fd, src.path, "")
}

type walker struct {
	filters []*ignorer
	buf     []byte // getdents64 buffer
	out     []*contextFile
}

func (w *walker) walk(fd int, dir, rel string) error {
	names, err := w.readNames(fd, dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		f := &contextFile{host: joinHost(dir, name), rel: name}
		if rel != "" {
			f.rel = rel + "/" + name
		}
		if err := unix.Fstatat(fd, name, &f.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lstat", Path: f.host, Err: err}
		}
		f.info = (*fileInfo)(f)
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
			if f.link, err = readlinkat(fd, name); err != nil {
				return &os.PathError{Op: "readlink", Path: f.host, Err: err}
			}
		}
		mark := len(w.out)
		if !excluded {
			w.out = append(w.out, f)
		}
		if !isDir {
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: f.host, Err: err}
		}
		err = w.walk(sub, f.host, f.rel)
		unix.Close(sub)
		if err != nil {
			return err
		}
		// An excluded directory still holds what an exception brings
		// back: keep it as their parent.
		if excluded && len(w.out) > mark {
			w.out = append(w.out[:mark], append([]*contextFile{f}, w.out[mark:]...)...)
		}
	}
	return nil
}

// readNames returns the names in directory fd, sorted.
func (w *walker) readNames(fd int, dir string) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(w.buf[:n], -1, names)
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

func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Sys is the stat as os.Lstat's FileInfo has it (archive/tar reads it):
// unix.Stat_t is syscall.Stat_t's layout, generated from the same header.
func (fi *fileInfo) Sys() any { return (*syscall.Stat_t)(unsafe.Pointer(&fi.st)) }

func statFile(host, rel string, info fs.FileInfo) (*contextFile, error) {
	f := &contextFile{host: host, rel: rel, info: info}
	if err := unix.Lstat(host, &f.st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(host)
		if err != nil {
			return nil, err
		}
		f.link = link
	}
	return f, nil
}

// digestsFromStatCache fills in the digests the stat cache vouches for,
// reading nothing.
func digestsFromStatCache(files []*contextFile, sc *cache.StatCache) {
	for _, f := range files {
		if f.digest == "" && f.info.Mode().IsRegular() {
			if d, ok := sc.Lookup(f.host, &f.st); ok {
				f.digest = d
			}
		}
	}
}

// hashFiles fills in the content digest of every regular file, from the stat
// cache where it vouches for the file, else by reading it (in parallel).
func hashFiles(files []*contextFile, sc *cache.StatCache) error {
	var todo []*contextFile
	for _, f := range files {
		if f.digest != "" || !f.info.Mode().IsRegular() {
			continue
		}
		if d, ok := sc.Lookup(f.host, &f.st); ok {
			f.digest = d
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
				d, err := hashFile(f.host, *buf)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				f.digest = d
				sc.Add(f.host, &f.st, d)
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

func hashFile(path string, buf []byte) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
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
