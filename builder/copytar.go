package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/tonistiigi/dchapes-mode"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// copyPlan is what a COPY writes: each source to its target path, with the
// owner and mode the instruction asks for.
type copyPlan struct {
	items []copyItem
	owner ids
	chown bool
	mode  fileMode
	// preserveOwner keeps the source files' owners when there is no --chown.
	preserveOwner bool
	// parents is COPY --parents: a directory source is copied itself.
	parents bool
	// stats learns the digests of files hashed while they are copied.
	stats *cache.StatCache
	// reuse, when set, is the previous snapshot of this COPY, whose
	// unchanged files are linked instead of copied.
	reuse *reuse
	// stream asks for the layer tar to be streamed while copying (see
	// layer.StreamDiff), which apply does when it can predict it; diff is
	// that tar.
	stream bool
	diff   *layer.StreamDiff
	// known, when set with stream, is the store, which may have this
	// layer already (likely, the last run's): its tar is then streamed
	// first, without writing anything, and when the store has it (see
	// Store.StreamedLayer) it is the step's layer and no file is written.
	known  *cache.Store
	likely digest.Digest
}

type copyItem struct {
	src    source
	files  []*contextFile // the source itself, or a directory's contents
	target string         // absolute path in the image
	// top, for a directory source, is the directory it lands in (its real
	// path in the rootfs and metadata), written after its contents.
	top *tar.Header
	// into, for a file source, is the real path of the directory it lands in.
	into string
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// apply writes the plan into the rootfs: a tar stream extracted there by
// layer.Apply, which resolves every path inside the rootfs.
func (p *copyPlan) apply(ctx context.Context, r *rootfs) error {
	if p.reuse != nil {
		p.reusable(p.emitTops())
		p.reuse.links = nil
		r.afterUnmount = append(r.afterUnmount, p.reuse.link)
	}
	if p.known != nil && p.reuse == nil && p.wayAsIn(r, p.known.SnapshotDir(p.likely)) {
		if sd := p.streamDiff(r); sd != nil {
			l, ok, err := p.existingLayer(ctx, sd)
			if err != nil {
				return err
			}
			if ok {
				r.existing = &l
				return nil
			}
		}
	}
	if p.diff = p.streamDiff(r); p.diff != nil {
		r.streamed = p.diff
	}
	pipe := newChunkPipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pipe.CloseWithError(p.writeTar(ctx, tar.NewWriter(pipe)))
	}()
	_, err := layer.Apply(ctx, r.dir, pipe, layer.ApplyOptions{})
	pipe.CloseReader(err)
	<-written // the digests it learnt are the caller's now
	return err
}

// sourcesHashed reports whether every regular file of the plan's sources
// has its digest before the copy (from the stat cache): a file that has
// one has not changed since it was last hashed (size, times, inode). The
// others most likely give another layer (a file's mtime is in the layer
// tar), which existingLayer would look for in vain, reading every file
// once more before the copy.
func (p *copyPlan) sourcesHashed() bool {
	for _, it := range p.items {
		for _, f := range it.files {
			if f.host != "" && f.fi().Mode().IsRegular() && !f.hashed() {
				return false
			}
		}
	}
	return true
}

// wayAsIn reports whether the directories on the way to the plan's one
// directory source's destination (not the destination itself, whose
// metadata the copy sets) are as they are in snapshot, another layer's
// directory. One that this COPY created (or created an entry in) has this
// build's time: the layer is then not that one, and existingLayer would
// look for it in vain, reading every file once more before the copy.
func (p *copyPlan) wayAsIn(r *rootfs, snapshot string) bool {
	if len(p.items) != 1 || p.items[0].top == nil {
		return false
	}
	rel := strings.TrimSuffix(p.items[0].top.Name, "/")
	for i := range len(rel) {
		if rel[i] != '/' {
			continue
		}
		a, err := layer.DirHeader(joinHost(r.dir, rel[:i]), rel[:i])
		if err != nil {
			return false
		}
		b, err := layer.DirHeader(filepath.Join(snapshot, rel[:i]), rel[:i])
		if err != nil || a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || !a.ModTime.Equal(b.ModTime) ||
			!maps.Equal(a.PAXRecords, b.PAXRecords) {
			return false
		}
	}
	return true
}

// existingLayer streams the plan's layer tar into sd, reading the sources
// but writing nothing, and returns the store's layer of that tar, if the
// store has it: the files need not be written then. The digests it learns
// on the way are not computed again if the files are written after all.
func (p *copyPlan) existingLayer(ctx context.Context, sd *layer.StreamDiff) (cache.Layer, bool, error) {
	find := p.known.StreamedLayer(ctx, p.likely)
	p.diff = sd
	defer func() {
		sd.Close()
		p.diff = nil
	}()
	if err := p.writeTar(ctx, discardTar{}); err != nil {
		return cache.Layer{}, false, err
	}
	return find(sd)
}

// streamDiff starts the layer tar of a COPY whose upper directory will
// hold the directories on the way to its one directory source's
// destination, then exactly what writeTar writes, in the differ's order: a
// directory source's listing is in that order (each directory's names
// sorted bytewise, a directory followed by its contents). Other COPYs, and
// one through a symlink, get nil: their layer is diffed.
func (p *copyPlan) streamDiff(r *rootfs) *layer.StreamDiff {
	if !p.stream || p.reuse != nil || p.parents || len(p.items) != 1 {
		return nil
	}
	it := p.items[0]
	if it.top == nil || !it.src.info.IsDir() {
		return nil
	}
	rel := strings.TrimSuffix(it.top.Name, "/")
	if rel == "." {
		rel = ""
	}
	if path.Clean(it.target) != "/"+rel {
		return nil // through a symlink: the layer names other paths
	}
	sd := layer.NewStreamDiff()
	for i := 0; rel != "" && i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		hdr, err := layer.DirHeader(joinHost(r.dir, rel[:i]), rel[:i])
		if err != nil {
			sd.Close()
			return nil
		}
		if i == len(rel) { // the destination: its times are the source's
			hdr.ModTime = time.Unix(it.top.ModTime.Unix(), 0)
		}
		sd.WriteHeader(hdr)
	}
	return sd
}

// tarWriter is what writeTar writes the plan to: a tar.Writer, or
// discardTar.
type tarWriter interface {
	WriteHeader(hdr *tar.Header) error
	io.Writer
	Close() error
}

// discardTar is a tarWriter that throws everything away, for a plan whose
// layer tar (the copyPlan's diff) is all that is wanted: that one's own
// tar writer checks each entry's size.
type discardTar struct{}

func (discardTar) WriteHeader(*tar.Header) error { return nil }
func (discardTar) Write(b []byte) (int, error)   { return len(b), nil }
func (discardTar) Close() error                  { return nil }

// writeTar streams the plan as a tar to tw, which it closes: a directory
// source contributes its contents (not itself), a file or symlink source
// itself.
func (p *copyPlan) writeTar(ctx context.Context, tw tarWriter) error {
	emitTop := p.emitTops()
	for i, it := range p.items {
		// Files that are hard links of each other in one source stay
		// linked, as with BuildKit (which links within one source only).
		links := map[[2]uint64]*contextFile{}
		for _, f := range it.files {
			if err := ctx.Err(); err != nil {
				return err
			}
			target := path.Join(it.target, f.rel)
			if f.host != "" && f.fi().Mode().IsRegular() && f.st.Nlink > 1 {
				ino := [2]uint64{f.st.Dev, f.st.Ino}
				if first, ok := links[ino]; ok {
					hdr := &tar.Header{Typeflag: tar.TypeLink, Name: strings.TrimPrefix(target, "/"),
						Linkname: strings.TrimPrefix(path.Join(it.target, first.rel), "/"), Format: tar.FormatPAX}
					if err := tw.WriteHeader(hdr); err != nil {
						return err
					}
					if p.diff != nil {
						fh, err := p.header(first, path.Join(it.target, first.rel))
						if err != nil {
							return err
						}
						p.diff.WriteHeader(layer.EntryHeader(hdr, fh))
					}
					if !f.hashed() {
						f.sum = first.sum // the same content (the cache key needs it)
					}
					continue
				}
				links[ino] = f
			}
			if l, ok := p.reuse.file(f); ok {
				p.reuse.links = append(p.reuse.links, l)
				continue
			}
			if err := p.writeEntry(tw, f, target); err != nil {
				return err
			}
		}
		if p.parents && it.src.info.IsDir() {
			// A directory --parents matched is copied with its metadata.
			self, err := statFile(it.src.path, "", it.src.info)
			if err != nil {
				return err
			}
			if err := p.writeEntry(tw, self, it.target); err != nil {
				return err
			}
		}
		if emitTop[i] {
			if err := tw.WriteHeader(it.top); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// emitTops says for each item whether its top directory entry (the times of
// a directory source's destination) is written.
func (p *copyPlan) emitTops() []bool {
	// lastInto is, for each directory a file source lands in, the last
	// such source: BuildKit copies sources in order, and a file created in
	// a directory after a directory source set its time gives it the
	// build's time again.
	lastInto := map[string]int{}
	for i, it := range p.items {
		if it.into != "" {
			lastInto[it.into] = i
		}
	}
	emit := make([]bool, len(p.items))
	for i, it := range p.items {
		if it.top != nil {
			last, ok := lastInto[it.top.Name]
			emit[i] = !ok || last < i
		}
	}
	return emit
}

// header is the tar header of f copied to target: the owner, mode and
// type COPY gives it.
func (p *copyPlan) header(f *contextFile, target string) (*tar.Header, error) {
	info := f.fi()
	hdr, err := tar.FileInfoHeader(info, f.symlink())
	if err != nil {
		return nil, err
	}
	hdr.Name = strings.TrimPrefix(target, "/")
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname = "", ""
	switch {
	case p.chown:
		hdr.Uid, hdr.Gid = p.owner.UID, p.owner.GID
	case p.preserveOwner && f.host != "":
		hdr.Uid, hdr.Gid = int(f.st.Uid), int(f.st.Gid)
	default:
		hdr.Uid, hdr.Gid = 0, 0
	}
	if m, ok := p.mode.apply(info.Mode()); ok && info.Mode()&fs.ModeSymlink == 0 {
		hdr.Mode = int64(m)
	}
	if f.host != "" {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(f.st.Rdev)), int64(unix.Minor(f.st.Rdev))
	}
	hdr.Format = tar.FormatPAX
	return hdr, nil
}

func (p *copyPlan) writeEntry(tw tarWriter, f *contextFile, target string) error {
	info := f.fi()
	hdr, err := p.header(f, target)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	var w io.Writer = tw
	if p.diff != nil {
		// Its errors are the stream's: the layer is then diffed.
		p.diff.WriteHeader(layer.EntryHeader(hdr, nil))
		w = teeWriter{tw, p.diff}
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	if f.host == "" {
		_, err := w.Write(f.heredoc())
		return err
	}
	return p.copySource(w, f, hdr.Size)
}

// teeWriter writes to w what it writes to tw, as io.MultiWriter, but
// ignores w's errors (a StreamDiff keeps its own).
type teeWriter struct {
	tw io.Writer
	w  io.Writer
}

func (t teeWriter) Write(b []byte) (int, error) {
	n, err := t.tw.Write(b)
	t.w.Write(b[:n]) //nolint:errcheck // see teeWriter
	return n, err
}

// copySource writes the regular context file f, of size bytes when it was
// listed, to w, and hashes it on the way when its digest is not known yet
// (a cold build). Per file that is an open, a read and a close: no poller
// registration as os.Open makes (four fcntl and a failing epoll_ctl for a
// regular file), and no read to find the end, since a read asking for one
// byte more than is left returns short at the end of a regular file.
func (p *copyPlan) copySource(w io.Writer, f *contextFile, size int64) error {
	// O_NOFOLLOW: the file was listed as a regular file; a symlink put in
	// its place since must not be followed out of the context.
	fd, err := unix.Open(f.host, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: f.host, Err: err}
	}
	defer unix.Close(fd)
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	var h hash.Hash
	if !f.hashed() {
		h = sha256.New()
	}
	for left := size; ; {
		chunk := *buf
		if int64(len(chunk)) > left {
			chunk = chunk[:left+1]
		}
		n, err := unix.Read(fd, chunk)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "read", Path: f.host, Err: err}
		}
		if int64(n) > left {
			return fmt.Errorf("%s: file grew while being copied", f.host)
		}
		if _, err := w.Write(chunk[:n]); err != nil {
			return err
		}
		if h != nil {
			h.Write(chunk[:n])
		}
		left -= int64(n)
		if n == 0 || left == 0 && n < len(chunk) {
			break // the end (a file that shrank fails in the tar writer)
		}
	}
	if h != nil {
		var sum [32]byte
		f.setSum([32]byte(h.Sum(sum[:0])))
		if p.stats != nil {
			f.addToStatCache(p.stats)
		}
	}
	return nil
}

// fileMode is a COPY or ADD --chmod: octal, or symbolic as chmod(1)'s
// ("u+x,g-w", parsed by the package BuildKit uses, with no umask).
type fileMode struct {
	octal *uint32
	set   *mode.Set
}

func parseChmod(s string) (fileMode, error) {
	if s == "" {
		return fileMode{}, nil
	}
	if m, err := strconv.ParseUint(s, 8, 32); err == nil {
		if m > 0o7777 {
			return fileMode{}, fmt.Errorf("invalid mode, expected an octal number up to 7777 or a symbolic mode")
		}
		m32 := uint32(m)
		return fileMode{octal: &m32}, nil
	}
	set, err := mode.ParseWithUmask(s, 0)
	if err != nil {
		return fileMode{}, fmt.Errorf("invalid mode, expected an octal number or a symbolic mode: %w", err)
	}
	return fileMode{set: &set}, nil
}

// created is the mode of the directories a COPY creates: the octal
// --chmod, else 0755 (as BuildKit, also with a symbolic --chmod).
func (m fileMode) created() uint32 {
	if m.octal != nil {
		return *m.octal
	}
	return 0o755
}

// apply is the mode a copied file of mode perm gets, as stat bits, and
// whether --chmod was given.
func (m fileMode) apply(perm fs.FileMode) (uint32, bool) {
	switch {
	case m.octal != nil:
		return *m.octal, true
	case m.set != nil:
		return unixPerm(m.set.Apply(perm)), true
	}
	return 0, false
}
