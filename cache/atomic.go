package cache

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// tempFile creates a file in the store's tmp directory, on the same filesystem
// as its final place so that the rename is atomic.
func (s *Store) tempFile(pattern string) (*os.File, error) {
	return os.CreateTemp(s.path("tmp"), pattern)
}

// TempDir creates a fresh directory under the store's tmp directory. The
// caller removes it or renames it into place.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(s.path("tmp"), pattern)
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync of
// the directory.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	f, err := s.tempFile(filepath.Base(path) + ".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := commitFile(f, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// replaceFile replaces path with data (temp file, rename) without syncing:
// for files whose loss in a crash of the machine does no harm.
func (s *Store) replaceFile(path string, data []byte) error {
	f, err := s.tempFile(filepath.Base(path) + ".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// commitFile fsyncs and closes f, renames it to path and fsyncs path's directory.
func commitFile(f *os.File, path string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// syncFS flushes the whole filesystem holding f to disk (syncfs(2)): one
// call makes every file of a snapshot durable, where an fsync per file would
// cost a round trip to the disk each. It fails if the filesystem failed to
// write back anything since f was opened.
func syncFS(f *os.File) error {
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync filesystem of %s: %w", f.Name(), err)
	}
	return nil
}
