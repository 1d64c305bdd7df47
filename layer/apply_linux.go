package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

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
	uid, gid := hdr.Uid, hdr.Gid
	if a.opts.Chown != nil {
		uid, gid = a.opts.Chown.UID, a.opts.Chown.GID
	}
	if uid < 0 || gid < 0 || uid >= math.MaxUint32 || gid >= math.MaxUint32 {
		return fmt.Errorf("owner %d:%d: %w", uid, gid, ErrInvalid)
	}
	mode := uint32(hdr.Mode & 0o7777)

	// Each entry is first created as if its name were free, which it mostly
	// is: only when the name is taken (EEXIST) is the existing entry looked
	// at and replaced. That spares a lookup per entry.
	switch hdr.Typeflag {
	case tar.TypeLink:
		err := a.link(pfd, base, target)
		if errors.Is(err, unix.EEXIST) {
			if _, err = a.clear(pfd, base, rel, false); err == nil {
				err = a.link(pfd, base, target)
			}
		}
		if err != nil {
			return err
		}
		a.markWritten(rel)
		return nil
	case tar.TypeReg:
		// writeFile reads nothing of tr when the name is taken.
		err := a.writeFile(pfd, base, tr, hdr, uid, gid, mode)
		if errors.Is(err, unix.EEXIST) {
			if _, err = a.clear(pfd, base, rel, false); err == nil {
				err = a.writeFile(pfd, base, tr, hdr, uid, gid, mode)
			}
		}
		if err != nil {
			return err
		}
	case tar.TypeDir:
		err := unix.Mkdirat(pfd, base, 0o700)
		if errors.Is(err, unix.EEXIST) {
			var kept bool
			if kept, err = a.clear(pfd, base, rel, true); err == nil && !kept {
				err = unix.Mkdirat(pfd, base, 0o700)
			}
		}
		if err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
		if err := a.setAttrs(pfd, base, hdr, uid, gid, mode, false); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("lstat: %w", err)
		}
		a.dirs = append(a.dirs, pendingDir{rel: rel, ino: inode{dev: uint64(st.Dev), ino: st.Ino}, mtime: hdr.ModTime})
	case tar.TypeSymlink:
		err := unix.Symlinkat(hdr.Linkname, pfd, base)
		if errors.Is(err, unix.EEXIST) {
			if _, err = a.clear(pfd, base, rel, false); err == nil {
				err = unix.Symlinkat(hdr.Linkname, pfd, base)
			}
		}
		if err != nil {
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
		err := unix.Mknodat(pfd, base, kind|0o600, int(dev))
		if errors.Is(err, unix.EEXIST) {
			if _, err = a.clear(pfd, base, rel, false); err == nil {
				err = unix.Mknodat(pfd, base, kind|0o600, int(dev))
			}
		}
		if err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		if err := a.setAttrs(pfd, base, hdr, uid, gid, mode, false); err != nil {
			return err
		}
	}
	a.markWritten(rel)
	return nil
}

// clear makes room for an entry whose name is taken in pfd: the existing
// entry is removed, unless both are directories (dir), when it is kept
// (kept: its contents stay and only its metadata is updated).
func (a *applier) clear(pfd int, base, rel string, dir bool) (kept bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("lstat existing %s: %w", rel, err)
	}
	if dir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, nil
	}
	// Removing a child of the cached parent leaves the cache valid.
	if err := removeAt(pfd, base, a.dents); err != nil {
		return false, fmt.Errorf("replace existing %s: %w", rel, err)
	}
	return false, nil
}
