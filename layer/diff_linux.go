package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// whiteoutTime is the mtime of every whiteout and opaque marker entry: they
// carry no metadata of their own, so a fixed value keeps layers reproducible.
var whiteoutTime = time.Unix(0, 0)

// WriteDiff writes dir as an OCI layer tar to w. dir is an overlayfs
// upperdir or any plain directory (which then simply has no whiteouts).
//
// The root itself is not an entry; names are relative ("etc/",
// "etc/passwd"), directories end in "/". Entries come in a stable order
// (each directory's names sorted bytewise, a directory immediately followed
// by its contents), and headers hold only what lstat and the xattrs say, so
// an unchanged directory always yields the same bytes. Overlay whiteouts
// (0/0 character devices) become ".wh.NAME" entries, opaque directories are
// followed by a ".wh..wh..opq" entry, later names of a hardlinked inode
// become hardlink entries to the first, overlay xattrs are dropped, and
// sockets are skipped. Directories using overlay redirects or metacopy are
// refused with ErrUnsupported.
func WriteDiff(ctx context.Context, w io.Writer, dir string, opts DiffOptions) error {
	bw := bufio.NewWriterSize(w, tarBufferSize)
	d := &differ{
		ctx:    ctx,
		tw:     tar.NewWriter(bw),
		opts:   opts,
		buf:    make([]byte, 4096), // symlink targets; copyFile grows it for contents
		dents:  make([]byte, 64<<10),
		xattrs: newXattrReader(),
	}
	if opts.Writeback {
		d.wb = newWriteback()
		defer d.wb.close()
	}
	if err := d.run(dir); err != nil {
		return err
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %s: close tar: %w", dir, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write diff of %s: %w", dir, err)
	}
	return nil
}

// run walks dir.
func (d *differ) run(dir string) error {
	rootfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write diff: open %s: %w", dir, err)
	}
	err = d.walk(rootfd, dir, "")
	unix.Close(rootfd)
	if err != nil {
		return fmt.Errorf("write diff of %s: %w", dir, err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type differ struct {
	ctx    context.Context
	tw     *tar.Writer
	opts   DiffOptions
	buf    []byte // file contents
	dents  []byte // getdents
	xattrs *xattrReader
	wb     *writeback       // with DiffOptions.Writeback
	links  map[inode]string // first name of each multiply-linked inode
	hdr    tar.Header
	// headers, when set, makes the differ write no tar: each entry's
	// header goes to it instead, and no regular file is opened or read
	// (see DiffHeaders).
	headers *headerHasher
}

// writeHeader writes hdr to the tar, or to the header hasher.
func (d *differ) writeHeader(hdr *tar.Header) error {
	if d.headers != nil {
		d.headers.add(hdr)
		return nil
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header %s: %w", hdr.Name, err)
	}
	return nil
}

// walk writes the entries inside the directory dirfd, whose path is abs and
// whose name in the layer is rel ("" for the root).
func (d *differ) walk(dirfd int, abs, rel string) error {
	names, err := readDirNames(dirfd, d.dents)
	if err != nil {
		return fmt.Errorf("%s: %w", abs, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.entry(dirfd, abs+"/"+name, joinRel(rel, name), name); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) entry(dirfd int, abs, rel, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lstat %s: %w", abs, err)
	}
	hdr := &d.hdr
	*hdr = tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: d.clamp(time.Unix(st.Mtim.Sec, 0)),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFCHR:
		if isWhiteout(&st) {
			dir, base := splitRel(rel)
			return d.writeMarker(joinRel(dir, whiteoutPrefix+base))
		}
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := readlinkAt(dirfd, name, d.buf)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", abs, err)
		}
		hdr.Linkname = target
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = rel + "/"
	default:
		return fmt.Errorf("%s: unknown file type %#o", abs, st.Mode&unix.S_IFMT)
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	}

	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		key := inode{dev: uint64(st.Dev), ino: st.Ino}
		if first, ok := d.links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			hdr.Devmajor, hdr.Devminor = 0, 0
			return d.writeHeader(hdr)
		}
		if d.links == nil {
			d.links = make(map[inode]string)
		}
		d.links[key] = rel
	}

	// A regular file or directory is opened first: its xattrs are read
	// through the descriptor, not by walking the path again.
	fd := -1
	var err error
	switch hdr.Typeflag {
	case tar.TypeReg:
		if d.headers != nil {
			break // xattrs by path: the content is not read
		}
		if fd, err = d.openFile(dirfd, abs, name); err != nil {
			return err
		}
	case tar.TypeDir:
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", abs, err)
		}
	}
	if fd >= 0 {
		defer unix.Close(fd)
	}
	opaque, err := d.readXattrs(fd, abs, hdr)
	if err != nil {
		return err
	}
	if err := d.writeHeader(hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if hdr.Size > 0 && d.headers == nil {
			if err := d.copyFile(fd, abs, hdr.Size); err != nil {
				return err
			}
			// after the last read: the pages are dropped once on disk
			d.opts.DropPages.add(fd, hdr.Size)
		}
	case tar.TypeDir:
		if opaque {
			if err := d.writeMarker(rel + "/" + opaqueMarker); err != nil {
				return err
			}
		}
		return d.walk(fd, abs, rel)
	}
	return nil
}

// readXattrs puts the xattrs of abs into hdr.PAXRecords and reports whether
// abs is an opaque overlay directory.
func (d *differ) readXattrs(fd int, abs string, hdr *tar.Header) (opaque bool, err error) {
	get := func(name string) ([]byte, error) { return d.xattrs.get(abs, name) }
	var list []byte
	if fd >= 0 {
		list, err = d.xattrs.listFD(fd, abs)
		get = func(name string) ([]byte, error) { return d.xattrs.getFD(fd, abs, name) }
	} else {
		list, err = d.xattrs.list(abs)
	}
	if err != nil || len(list) == 0 {
		return false, err
	}
	// list aliases a buffer that get does not touch.
	err = splitXattrNames(list, func(name string) error {
		kind := overlayXattrKind(name)
		switch kind {
		case "":
		case "redirect", "metacopy":
			return fmt.Errorf("%s has xattr %s: %w", abs, name, ErrUnsupported)
		case "opaque":
			if hdr.Typeflag != tar.TypeDir {
				return nil
			}
			v, err := get(name)
			if err != nil {
				return err
			}
			opaque = opaque || string(v) == "y"
			return nil
		default:
			return nil
		}
		v, err := get(name)
		if err != nil {
			return err
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattrPrefix+name] = string(v)
		return nil
	})
	return opaque, err
}

// paxXattrPrefix is how GNU tar, Docker and containerd store xattrs.
const paxXattrPrefix = "SCHILY.xattr."

// writeMarker writes an empty whiteout or opaque marker entry.
func (d *differ) writeMarker(name string) error {
	d.hdr = tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		ModTime:  whiteoutTime,
	}
	return d.writeHeader(&d.hdr)
}

// openFile opens the regular file name in dirfd for reading.
func (d *differ) openFile(dirfd int, abs, name string) (int, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME needs ownership or CAP_FOWNER
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", abs, err)
	}
	return fd, nil
}

// copyFile writes exactly size bytes of the open file fd.
func (d *differ) copyFile(fd int, abs string, size int64) error {
	if want := min(size, copyBufferSize); int64(len(d.buf)) < want {
		// as large as the largest file so far needs, up to copyBufferSize: a
		// RUN step's layer of a few small files zeroes no megabyte
		d.buf = make([]byte, min((want+smallBufferSize-1)/smallBufferSize*smallBufferSize, copyBufferSize))
	}
	if d.wb != nil && size >= writebackMin {
		// before the first read: the disk writes the file while it is read
		// and hashed
		d.wb.start(fd)
	}
	for size > 0 {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		chunk := d.buf
		if int64(len(chunk)) > size {
			chunk = chunk[:size]
		}
		n, err := unix.Read(fd, chunk)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", abs, err)
		}
		if n == 0 {
			return fmt.Errorf("read %s: file shrank while being archived: %w", abs, io.ErrUnexpectedEOF)
		}
		if _, err := d.tw.Write(chunk[:n]); err != nil {
			return fmt.Errorf("write %s: %w", abs, err)
		}
		size -= int64(n)
	}
	return nil
}

func (d *differ) clamp(t time.Time) time.Time {
	if e := d.opts.SourceDateEpoch; e != nil && t.After(*e) {
		return time.Unix(e.Unix(), 0)
	}
	return t
}

// readlinkAt reads the target of the symlink name in dirfd using buf.
func readlinkAt(dirfd int, name string, buf []byte) (string, error) {
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
