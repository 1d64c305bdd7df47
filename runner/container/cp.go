package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/layer/inroot"
)

// `kiln cp` moves files as docker cp does: the source becomes a tar whose
// top entry is the source's base name (or, for "DIR/.", the directory's
// contents), which is then extracted at the destination by docker's rules:
// into an existing directory; over an existing file; or, when the
// destination does not exist, as that new name. Both sides resolve paths
// inside a root (the container's, or the host's "/"), and extraction goes
// through layer.Apply, which never writes outside the directory it is given.

// CopyInfo describes an archived source.
type CopyInfo struct {
	Name  string // the top entry's name; "" when the tar holds a directory's contents
	IsDir bool
	Stdin bool // an arbitrary tar from the user: the destination must be a directory
}

// CopyOptions are docker cp's flags.
type CopyOptions struct {
	Follow  bool // -L: follow a symlink given as the source
	Archive bool // -a: keep uid/gid; else files belong to the destination's root (host: the caller)
}

var errCopyDirToFile = errors.New("cannot copy a directory to a file")

// CopyFrom writes the container path src as a tar to w.
func (c *Container) CopyFrom(ctx context.Context, src string, o CopyOptions, w io.Writer) (CopyInfo, error) {
	rootfd, err := c.openRoot(false)
	if err != nil {
		return CopyInfo{}, err
	}
	defer unix.Close(rootfd)
	info, err := archivePath(ctx, rootfd, src, o.Follow, w)
	if err != nil {
		return info, fmt.Errorf("copy from container %s: %w", c.Name, err)
	}
	return info, nil
}

// CopyTo extracts the tar r (described by info) at the container path dst.
func (c *Container) CopyTo(ctx context.Context, dst string, r io.Reader, info CopyInfo, o CopyOptions) error {
	rootfd, err := c.openRoot(true)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	var chown *layer.IDPair
	if !o.Archive {
		chown = &layer.IDPair{UID: 0, GID: 0}
	}
	if err := extractPath(ctx, rootfd, dst, r, info, chown); err != nil {
		return fmt.Errorf("copy to container %s: %w", c.Name, err)
	}
	c.logEvent("copy", map[string]string{"path": dst})
	return nil
}

// StatPath describes what CopyFrom of src would write.
func (c *Container) StatPath(src string, o CopyOptions) (CopyInfo, error) {
	rootfd, err := c.openRoot(false)
	if err != nil {
		return CopyInfo{}, err
	}
	defer unix.Close(rootfd)
	info, fd, _, err := statPath(rootfd, src, o.Follow)
	if err != nil {
		return info, fmt.Errorf("copy from container %s: %w", c.Name, err)
	}
	unix.Close(fd)
	return info, nil
}

// StatHost describes what ArchiveHost of src would write.
func StatHost(src string, o CopyOptions) (CopyInfo, error) {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return CopyInfo{}, err
	}
	defer unix.Close(rootfd)
	info, fd, _, err := statPath(rootfd, absHost(src), o.Follow)
	if err != nil {
		return info, err
	}
	unix.Close(fd)
	return info, nil
}

// ArchiveHost writes the host path src as a tar to w.
func ArchiveHost(ctx context.Context, src string, o CopyOptions, w io.Writer) (CopyInfo, error) {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return CopyInfo{}, err
	}
	defer unix.Close(rootfd)
	return archivePath(ctx, rootfd, absHost(src), o.Follow, w)
}

// ExtractHost extracts the tar r (described by info) at the host path dst.
func ExtractHost(ctx context.Context, dst string, r io.Reader, info CopyInfo, o CopyOptions) error {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	var chown *layer.IDPair
	if !o.Archive {
		chown = &layer.IDPair{UID: os.Getuid(), GID: os.Getgid()}
	}
	return extractPath(ctx, rootfd, absHost(dst), r, info, chown)
}

// absHost makes a host path absolute, keeping a trailing "/" or "/.".
func absHost(p string) string {
	if path.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	return strings.TrimSuffix(wd, "/") + "/" + p
}

// statPath opens the source p inside rootfd and describes its archive.
func statPath(rootfd int, p string, follow bool) (CopyInfo, int, unix.Stat_t, error) {
	contents := strings.HasSuffix(p, "/.") || p == "."
	fd, st, err := openIn(rootfd, p, follow || contents || strings.HasSuffix(p, "/"))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return CopyInfo{}, -1, st, fmt.Errorf("could not find the file %s", p)
		}
		return CopyInfo{}, -1, st, err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	info := CopyInfo{IsDir: isDir, Name: path.Base(path.Clean("/" + p))}
	if info.Name == "/" {
		info.Name = "."
	}
	if contents {
		if !isDir {
			unix.Close(fd)
			return info, -1, st, fmt.Errorf("%s: not a directory", p)
		}
		info.Name = ""
	}
	return info, fd, st, nil
}

// archivePath writes the tar of p inside rootfd.
func archivePath(ctx context.Context, rootfd int, p string, follow bool, w io.Writer) (CopyInfo, error) {
	info, fd, st, err := statPath(rootfd, p, follow)
	if err != nil {
		return info, err
	}
	defer unix.Close(fd)
	isDir := info.IsDir
	tw := tar.NewWriter(w)
	if !isDir {
		if err := writeEntry(tw, fd, info.Name, &st); err != nil {
			return info, err
		}
		return info, tw.Close()
	}
	prefix := ""
	if info.Name != "" {
		prefix = info.Name + "/"
		if err := writeEntry(tw, fd, prefix, &st); err != nil {
			return info, err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.WriteDiff(ctx, pw, inroot.ProcPath(fd), layer.DiffOptions{})) }()
	err = retar(pr, tw, func(h *tar.Header) error {
		h.Name = prefix + h.Name
		if h.Typeflag == tar.TypeLink {
			h.Linkname = prefix + h.Linkname
		}
		return nil
	})
	pr.CloseWithError(err)
	if err != nil {
		return info, err
	}
	return info, tw.Close()
}

// writeEntry writes the one entry of the file opened as fd (O_PATH).
func writeEntry(tw *tar.Writer, fd int, name string, st *unix.Stat_t) error {
	h := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
	}
	var content *os.File
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
		f, err := os.Open(inroot.ProcPath(fd))
		if err != nil {
			return err
		}
		defer f.Close()
		content = f
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("%s: cannot copy a socket", name)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if content != nil {
		if _, err := io.CopyN(tw, content, h.Size); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return nil
}

// retar copies the entries of the tar r to tw, through edit.
func retar(r io.Reader, tw *tar.Writer, edit func(*tar.Header) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := edit(h); err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// extractPath extracts the tar r at dst inside rootfd by docker cp's rules.
func extractPath(ctx context.Context, rootfd int, dst string, r io.Reader, info CopyInfo, chown *layer.IDPair) error {
	wantDir := strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, "/.")
	clean := path.Clean("/" + dst)
	into, rename := clean, ""
	fd, st, err := openIn(rootfd, clean, true)
	switch {
	case err == nil:
		unix.Close(fd)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if info.IsDir || info.Stdin {
				return fmt.Errorf("%s: %w", dst, errCopyDirToFile)
			}
			if wantDir {
				return fmt.Errorf("%s: not a directory", dst)
			}
			into, rename = path.Dir(clean), path.Base(clean)
		}
	case errors.Is(err, unix.ENOENT):
		if info.Stdin {
			return fmt.Errorf("%s: destination directory does not exist", dst)
		}
		if wantDir && !info.IsDir {
			return fmt.Errorf("%s: no such directory", dst)
		}
		pfd, pst, perr := openIn(rootfd, path.Dir(clean), true)
		if perr != nil {
			return fmt.Errorf("%s: parent directory does not exist", dst)
		}
		unix.Close(pfd)
		if pst.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s: parent is not a directory", dst)
		}
		into, rename = path.Dir(clean), path.Base(clean)
	default:
		return err
	}
	resolved, err := inroot.Resolve(rootfd, into)
	if err != nil {
		return err
	}
	dirfd, err := inroot.Open(rootfd, inroot.Rel(resolved), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open %s: %w", into, err)
	}
	defer unix.Close(dirfd)

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := retar(r, tw, func(h *tar.Header) error {
			name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
			if strings.HasPrefix(path.Base(name), ".wh.") {
				return fmt.Errorf("%s: names starting with .wh. are reserved for layer whiteouts", h.Name)
			}
			if rename != "" {
				switch {
				case info.Name == "":
					name = path.Join(rename, name)
				case name == info.Name:
					name = rename
				case strings.HasPrefix(name, info.Name+"/"):
					name = rename + strings.TrimPrefix(name, info.Name)
				}
				if h.Typeflag == tar.TypeLink {
					ln := strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
					if info.Name == "" {
						h.Linkname = path.Join(rename, ln)
					} else if ln == info.Name || strings.HasPrefix(ln, info.Name+"/") {
						h.Linkname = rename + strings.TrimPrefix(ln, info.Name)
					}
				}
			}
			if name == "" {
				name = "."
			}
			if h.Typeflag == tar.TypeDir {
				name += "/"
			}
			h.Name = name
			return nil
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if info.Name == "" && rename != "" {
		// A directory's contents into a new directory: make it first.
		nfd, _, err := inroot.MkdirAll(dirfd, "/"+rename, 0o755, nil)
		if err != nil {
			pr.CloseWithError(err)
			return err
		}
		unix.Close(nfd)
	}
	_, err = layer.Apply(ctx, inroot.ProcPath(dirfd), pr, layer.ApplyOptions{Chown: chown})
	if err == nil {
		_, err = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(err)
	return err
}

// Export writes the container's file system (image layers and writable
// layer, without its mounts) as a tar to w, as docker export.
func (c *Container) Export(ctx context.Context, w io.Writer) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	fd, err := c.mountRoot(false, c.State.Running)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := layer.WriteDiff(ctx, w, inroot.ProcPath(fd), layer.DiffOptions{}); err != nil {
		return fmt.Errorf("export container %s: %w", c.Name, err)
	}
	c.logEvent("export", nil)
	return nil
}
