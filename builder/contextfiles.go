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
	"sync"

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
func walkSource(src source, filters ...*ignorer) ([]*contextFile, error) {
	if !src.info.IsDir() {
		f, err := statFile(src.path, "", src.info)
		if err != nil {
			return nil, err
		}
		return []*contextFile{f}, nil
	}
	var out []*contextFile
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			host := filepath.Join(dir, e.Name())
			childRel := path.Join(rel, e.Name())
			excluded, descend := false, e.IsDir()
			for _, ig := range filters {
				if x, d := ig.check(host, e.IsDir()); x {
					excluded, descend = true, descend && d
				}
			}
			if excluded && !descend {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			f, err := statFile(host, childRel, info)
			if err != nil {
				return err
			}
			mark := len(out)
			if !excluded {
				out = append(out, f)
			}
			if e.IsDir() {
				if err := walk(host, childRel); err != nil {
					return err
				}
				// An excluded directory still holds what an exception
				// brings back: keep it as their parent.
				if excluded && len(out) > mark {
					out = append(out[:mark], append([]*contextFile{f}, out[mark:]...)...)
				}
			}
		}
		return nil
	}
	return out, walk(src.path, "")
}

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

// describe is a file as the cache key sees it: name, type, mode, size,
// content and link target — never its times or its owner in the context
// (COPY sets owners itself).
func (f *contextFile) describe() string {
	mode := f.info.Mode()
	kind := "f"
	switch {
	case mode.IsDir():
		kind = "d"
	case mode&fs.ModeSymlink != 0:
		kind = "l"
	case !mode.IsRegular():
		kind = "o" + mode.Type().String()
	}
	return fmt.Sprintf("%s %s %o %d %s %s", f.rel, kind, unixPerm(f.info.Mode()), f.info.Size(), f.digest, f.link)
}

// fileList is the explain-cache view of a COPY's sources: context path → description.
func fileList(contextDir string, files []*contextFile) map[string]string {
	out := make(map[string]string, len(files))
	for _, f := range files {
		rel, err := filepath.Rel(contextDir, f.host)
		if err != nil {
			rel = f.host
		}
		out[filepath.ToSlash(rel)] = f.describe()
	}
	return out
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
