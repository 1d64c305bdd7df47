package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer/inroot"
)

// IDPair is a uid and gid.
type IDPair struct{ UID, GID int }

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// OverlayWhiteouts selects how whiteouts are applied. true: ".wh.X"
	// becomes a 0/0 character device X and ".wh..wh..opq" sets
	// trusted.overlay.opaque=y on its directory, for extracting a layer into
	// its own directory that is then used as an overlay lowerdir. false:
	// ".wh.X" deletes X from dir and ".wh..wh..opq" deletes the existing
	// children of its directory that this tar did not write, for applying a
	// layer onto a flattened tree.
	OverlayWhiteouts bool
	// Chown, when non-nil, overrides every entry's uid/gid.
	Chown *IDPair
}

// Apply extracts the uncompressed tar stream r into the existing directory
// dir and returns the number of bytes read from r, which is read to its end.
//
// Nothing is ever written outside dir: every name is resolved as if dir were
// the root directory (chroot semantics, via openat2 RESOLVE_IN_ROOT), so
// "../../x", "/x", and paths through symlinks such as "evil -> /etc" all
// land inside dir. An entry replaces an existing path of another type; a
// directory over an existing directory keeps it and updates its metadata.
// Ownership, mode (applied after ownership, so setuid bits survive), xattrs
// and mtimes come from the headers; directory mtimes are set once all
// entries are written.
//
// Xattrs from SCHILY.xattr.* records are set, except overlayfs' own
// (trusted.overlay.*, user.overlay.*), which a layer must not carry. Failing
// to set an xattr is an error, except ENOTSUP or EPERM for user.* xattrs
// (filesystems without user xattrs; Linux refuses user.* on symlinks and
// devices), which are skipped.
//
// Errors name the entry at fault.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	cr := &countingReader{r: r}
	rootfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("apply layer: open %s: %w", dir, err)
	}
	a := &applier{
		ctx:     ctx,
		rootfd:  rootfd,
		opts:    opts,
		buf:     make([]byte, copyBufferSize),
		dents:   make([]byte, 64<<10),
		written: make(map[string]struct{}),
		cacheFD: -1,
		euid:    unix.Geteuid(),
		egid:    unix.Getegid(),
		umask:   processUmask(),
	}
	defer a.close()

	br := bufio.NewReaderSize(cr, 64<<10)
	tr := tar.NewReader(br)
	for {
		if err := ctx.Err(); err != nil {
			return cr.n, fmt.Errorf("apply layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("apply layer: read tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return cr.n, fmt.Errorf("apply layer: entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return cr.n, fmt.Errorf("apply layer: %w", err)
	}
	// Consume trailing padding so callers hashing r see the whole stream.
	if _, err := io.CopyBuffer(io.Discard, readerOnly{br}, a.buf); err != nil {
		return cr.n, fmt.Errorf("apply layer: read tar: %w", err)
	}
	return cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type applier struct {
	ctx    context.Context
	rootfd int
	opts   ApplyOptions
	buf    []byte
	dents  []byte
	// written holds every path this tar created, and their ancestors.
	written map[string]struct{}
	// dirs are the directories whose times are set at the end.
	dirs []pendingDir
	// cacheRel/cacheFD remember the last parent directory resolved. Any
	// removal invalidates it: a removal is the only way a path that
	// resolved once can come to resolve to something else.
	cacheRel string
	cacheFD  int
	// cacheSetgid says whether the cached parent has the setgid bit (new
	// files then take its group); -1 when not known yet.
	cacheSetgid int
	// euid, egid and umask decide which of chown and chmod a file created
	// here still needs.
	euid, egid int
	umask      uint32
}

type pendingDir struct {
	rel   string
	ino   inode
	mtime time.Time
}

func (a *applier) close() {
	a.invalidate()
	unix.Close(a.rootfd)
}

func (a *applier) invalidate() {
	if a.cacheFD >= 0 {
		unix.Close(a.cacheFD)
		a.cacheFD = -1
	}
}

// cleanName maps a tar name to a root-relative path without "." or ".."
// elements ("" is the root itself).
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeGNUSparse, tar.TypeCont:
		// Regular files: the reader expands sparse maps; contiguous files
		// are regular files everywhere but on long-gone systems.
		hdr.Typeflag = tar.TypeReg
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported tar entry type %q: %w", hdr.Typeflag, ErrInvalid)
	}
	rel := cleanName(hdr.Name)
	if rel == "" {
		// The root is dir itself, which is not ours to change.
		return nil
	}
	parent, base := splitRel(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parent, base)
	}

	var target string
	if hdr.Typeflag == tar.TypeLink {
		target = cleanName(hdr.Linkname)
		if target == "" || target == rel || strings.HasPrefix(target, rel+"/") {
			return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, ErrInvalid)
		}
	}

	pfd, err := a.parentFD(parent)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return fmt.Errorf("lstat existing %s: %w", rel, err)
	case hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// Keep the directory and its contents; update its metadata below.
	default:
		// Removing a child of the cached parent leaves the cache valid.
		if err := removeAt(pfd, base, a.dents); err != nil {
			return fmt.Errorf("replace existing %s: %w", rel, err)
		}
		err = unix.ENOENT
	}
	exists := err == nil

	uid, gid := hdr.Uid, hdr.Gid
	if a.opts.Chown != nil {
		uid, gid = a.opts.Chown.UID, a.opts.Chown.GID
	}
	if uid < 0 || gid < 0 || uid >= math.MaxUint32 || gid >= math.MaxUint32 {
		return fmt.Errorf("owner %d:%d: %w", uid, gid, ErrInvalid)
	}
	mode := uint32(hdr.Mode & 0o7777)

	switch hdr.Typeflag {
	case tar.TypeLink:
		if err := a.link(pfd, base, target); err != nil {
			return err
		}
		a.markWritten(rel)
		return nil
	case tar.TypeReg:
		if err := a.writeFile(pfd, base, tr, hdr, uid, gid, mode); err != nil {
			return err
		}
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
		if err := a.setAttrs(pfd, base, hdr, uid, gid, mode, false); err != nil {
			return err
		}
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("lstat: %w", err)
		}
		a.dirs = append(a.dirs, pendingDir{rel: rel, ino: inode{dev: uint64(st.Dev), ino: st.Ino}, mtime: hdr.ModTime})
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		if err := a.setAttrs(pfd, base, hdr, uid, gid, mode, true); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		if err := a.setAttrs(pfd, base, hdr, uid, gid, mode, false); err != nil {
			return err
		}
	}
	a.markWritten(rel)
	return nil
}

// writeFile creates the regular file base in pfd with the entry's contents
// and metadata.
func (a *applier) writeFile(pfd int, base string, tr io.Reader, hdr *tar.Header, uid, gid int, mode uint32) error {
	// O_EXCL: whatever was there has been removed, and a name that reappears
	// (a racing symlink, say) must not be written through.
	// Created with its permission bits: when the umask leaves them whole, the
	// file needs no chmod, and when it is ours already (owner as the entry
	// says, no setgid parent handing it another group) no chown: fewer
	// metadata writes per file, which is what extraction mostly costs.
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	needChown := uid != a.euid || gid != a.egid || a.parentSetgid(pfd)
	needChmod := needChown || mode&^0o777 != 0 || mode&a.umask != 0
	err = a.copyTo(fd, tr)
	if err == nil && needChown {
		if err = unix.Fchown(fd, uid, gid); err != nil {
			err = fmt.Errorf("chown: %w", err)
		}
	}
	if err == nil && needChmod {
		if err = unix.Fchmod(fd, mode); err != nil {
			err = fmt.Errorf("chmod: %w", err)
		}
	}
	if err == nil && len(hdr.PAXRecords) > 0 {
		err = a.setXattrs(hdr, func(name string, value []byte) error {
			return setXattrFD(fd, name, value)
		})
	}
	if err == nil {
		ts := unix.Timespec{Sec: hdr.ModTime.Unix(), Nsec: int64(hdr.ModTime.Nanosecond())}
		if err = unix.UtimesNanoAt(fd, "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH); err != nil {
			// Older kernels lack AT_EMPTY_PATH for utimensat: by name then.
			err = setTimes(pfd, base, hdr.ModTime)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close file: %w", cerr)
	}
	return err
}

// copyTo writes r to the new file fd. Chunks of zeros are skipped with a
// seek instead of written, so sparse files (which the tar reader expands)
// stay sparse on disk.
func (a *applier) copyTo(fd int, r io.Reader) error {
	var size int64
	hole := false
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(a.buf)
		if n >= 4096 && isZero(a.buf[:n]) {
			if _, serr := unix.Seek(fd, int64(n), io.SeekCurrent); serr != nil {
				return fmt.Errorf("seek file: %w", serr)
			}
			hole = true
		} else {
			for p := a.buf[:n]; len(p) > 0; {
				m, werr := unix.Write(fd, p)
				if errors.Is(werr, unix.EINTR) {
					continue
				}
				if werr != nil {
					return fmt.Errorf("write file: %w", werr)
				}
				p = p[m:]
			}
			hole = false
		}
		size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read file contents: %w", err)
		}
	}
	if hole { // a trailing hole: set the length
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("truncate file: %w", err)
		}
	}
	return nil
}

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if binary.NativeEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// setAttrs applies ownership, mode, xattrs and (except for directories,
// which are done at the end) times to the entry base in pfd.
func (a *applier) setAttrs(pfd int, base string, hdr *tar.Header, uid, gid int, mode uint32, symlink bool) error {
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if !symlink {
		// base was just created or checked to be a directory, never a
		// symlink, so following is safe (Linux has no lchmod).
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	err := a.setXattrs(hdr, func(name string, value []byte) error {
		return setXattrAt(pfd, base, name, value)
	})
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	return setTimes(pfd, base, hdr.ModTime)
}

// setXattrs sets the entry's SCHILY.xattr records with set.
func (a *applier) setXattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, paxXattrPrefix)
		if !ok || name == "" || isOverlayXattr(name) {
			continue
		}
		err := set(name, []byte(value))
		if err == nil {
			continue
		}
		if strings.HasPrefix(name, "user.") && (errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)) {
			continue
		}
		return fmt.Errorf("set xattr %s: %w", name, err)
	}
	return nil
}

func setTimes(pfd int, base string, mtime time.Time) error {
	ts := unix.Timespec{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// link creates base in pfd as a hardlink to target, both resolved in root.
// A symlink named by target is linked itself, never followed.
func (a *applier) link(pfd int, base, target string) error {
	tparent, tbase := splitRel(target)
	tfd, err := inroot.Open(a.rootfd, tparent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	return nil
}

// whiteout applies a ".wh." entry named base inside the directory parent.
func (a *applier) whiteout(parent, base string) error {
	if base == opaqueMarker {
		return a.opaque(parent)
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // AUFS bookkeeping, meaningless here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("whiteout name: %w", ErrInvalid)
	}
	rel := joinRel(parent, name)
	if _, ok := a.written[rel]; ok {
		// A whiteout hides lower layers only, never entries of its own layer.
		return nil
	}
	if a.opts.OverlayWhiteouts {
		pfd, err := a.parentFD(parent)
		if err != nil {
			return err
		}
		if err := removeAt(pfd, name, a.dents); err != nil {
			return fmt.Errorf("replace existing %s: %w", rel, err)
		}
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create whiteout device: %w", err)
		}
		return nil
	}
	pfd, err := inroot.Open(a.rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing to delete
	}
	if err != nil {
		return fmt.Errorf("resolve %q: %w", parent, err)
	}
	defer unix.Close(pfd)
	a.invalidate()
	if err := removeAt(pfd, name, a.dents); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// opaque applies a ".wh..wh..opq" entry of the directory rel.
func (a *applier) opaque(rel string) error {
	if a.opts.OverlayWhiteouts {
		if _, err := a.parentFD(rel); err != nil { // create it if missing
			return err
		}
		fd, err := inroot.Open(a.rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open opaque directory: %w", err)
		}
		defer unix.Close(fd)
		if err := setXattrFD(fd, overlayOpaqueXattr, []byte("y")); err != nil {
			return fmt.Errorf("set xattr %s: %w", overlayOpaqueXattr, err)
		}
		return nil
	}
	fd, err := inroot.Open(a.rootfd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open opaque directory: %w", err)
	}
	defer unix.Close(fd)
	a.invalidate()
	if err := a.pruneUnwritten(fd, rel); err != nil {
		return fmt.Errorf("opaque directory: %w", err)
	}
	return nil
}

// pruneUnwritten removes everything below the directory fd (named rel) that
// this tar did not write: under an opaque directory nothing of the lower
// layers survives, not even inside subdirectories this layer also has.
func (a *applier) pruneUnwritten(fd int, rel string) error {
	names, err := readDirNames(fd, a.dents)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := joinRel(rel, name)
		if _, ok := a.written[child]; !ok {
			if err := removeAt(fd, name, a.dents); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue // a written non-directory
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", child, err)
		}
		err = a.pruneUnwritten(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// parentFD returns an O_PATH fd of the directory rel, creating missing
// directories. The fd belongs to the applier: do not close it.
func (a *applier) parentFD(rel string) (int, error) {
	if rel == "" {
		return a.rootfd, nil
	}
	if a.cacheFD >= 0 && a.cacheRel == rel {
		return a.cacheFD, nil
	}
	fd, err := a.mkdirAll(rel)
	if err != nil {
		return -1, err
	}
	a.invalidate()
	a.cacheRel, a.cacheFD, a.cacheSetgid = rel, fd, -1
	return fd, nil
}

// parentSetgid reports whether the directory pfd has the setgid bit.
func (a *applier) parentSetgid(pfd int) bool {
	if pfd == a.cacheFD && a.cacheSetgid >= 0 {
		return a.cacheSetgid == 1
	}
	var st unix.Stat_t
	setgid := unix.Fstat(pfd, &st) != nil || st.Mode&unix.S_ISGID != 0 // unknown: assume it is
	if pfd == a.cacheFD {
		a.cacheSetgid = 0
		if setgid {
			a.cacheSetgid = 1
		}
	}
	return setgid
}

// processUmask reads the umask without changing it (umask(2) can only set
// it, and setting it is process-wide).
func processUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o777 // unknown: every mode is set explicitly
}

// mkdirAll resolves the directory rel in root, creating missing elements
// (mode 0755, root-owned), and returns an O_PATH fd of it.
func (a *applier) mkdirAll(rel string) (int, error) {
	if rel == "" {
		return unix.Dup(a.rootfd)
	}
	fd, err := inroot.Open(a.rootfd, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, fmt.Errorf("resolve parent %q: %w", rel, err)
		}
		return fd, nil
	}
	// Walk down from the root, creating what is missing.
	parentFD, err := unix.Dup(a.rootfd)
	if err != nil {
		return -1, fmt.Errorf("dup root: %w", err)
	}
	prefix := ""
	for _, elem := range strings.Split(rel, "/") {
		prefix = joinRel(prefix, elem)
		fd, err := inroot.Open(a.rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(parentFD, elem, 0o755); err != nil {
				unix.Close(parentFD)
				return -1, fmt.Errorf("create parent %q: %w", prefix, err)
			}
			a.markWritten(prefix)
			fd, err = inroot.Open(a.rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY)
		}
		unix.Close(parentFD)
		if err != nil {
			return -1, fmt.Errorf("resolve parent %q: %w", prefix, err)
		}
		parentFD = fd
	}
	return parentFD, nil
}

func (a *applier) markWritten(rel string) {
	for rel != "" {
		if _, ok := a.written[rel]; ok {
			return
		}
		a.written[rel] = struct{}{}
		rel, _ = splitRel(rel)
	}
}

// finishDirs sets the mtimes of the directories written, last entry first so
// that a directory listed twice gets the later entry's time, skipping any
// path that no longer holds the directory that was created.
func (a *applier) finishDirs() error {
	a.invalidate()
	done := make(map[inode]struct{}, len(a.dirs))
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if _, ok := done[d.ino]; ok {
			continue
		}
		done[d.ino] = struct{}{}
		parent, base := splitRel(d.rel)
		pfd, err := inroot.Open(a.rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("entry %q: resolve parent: %w", d.rel, err)
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && (inode{uint64(st.Dev), st.Ino}) == d.ino {
			err = setTimes(pfd, base, d.mtime)
		} else if errors.Is(err, unix.ENOENT) {
			err = nil
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.rel+"/", err)
		}
	}
	return nil
}
