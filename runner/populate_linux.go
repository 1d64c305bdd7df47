package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// populate fills the directory dst, when it is empty, with a copy of the
// tree at src (a directory of the sandbox's merged rootfs, not yet covered
// by the mount), as docker fills a new volume from its image: owners, modes,
// times, symlinks (never followed), hard links, devices and fifos; dst
// itself takes src's owner and mode. Nothing happens when either is not a
// directory or dst is not empty.
func populate(dst, src string) error {
	var sst unix.Stat_t
	if err := unix.Lstat(src, &sst); err != nil || sst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(1)
	d.Close()
	if len(names) > 0 || (err != nil && !errors.Is(err, io.EOF)) {
		return err
	}
	links := map[uint64]string{} // inode in src -> first copy in dst
	err = filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyEntry(p, filepath.Join(dst, rel), rel == ".", links)
	})
	if err != nil {
		return err
	}
	// Directory times last: filling a directory changes its mtime.
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.IsDir() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return setTimes(filepath.Join(dst, rel), st.Atim, st.Mtim)
	})
}

func copyEntry(src, dst string, root bool, links map[uint64]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	mode := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if !root {
			if err := unix.Mkdir(dst, 0o700); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				return unix.Link(first, dst)
			}
			links[st.Ino] = dst
		}
		if err := copyFileData(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return err
		}
		if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		return setTimes(dst, st.Atim, st.Mtim)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unknown file type", src)
	}
	// Owner before mode: chown clears setuid and setgid bits.
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, mode); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return setTimes(dst, st.Atim, st.Mtim)
	}
	return nil
}

func copyFileData(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
