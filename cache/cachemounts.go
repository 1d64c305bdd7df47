package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Cache mounts (RUN --mount=type=cache) keep their contents across builds
// under cachemounts/<sha256 of the key>/<n>/: instance 0 is the one shared
// and locked users take; a private user that finds an instance busy takes
// the next free one (1, 2, ...). Each instance directory is flocked by its
// users: shared (LOCK_SH) or exclusive (LOCK_EX). Their contents never enter
// a layer and GC leaves them alone; RemoveCacheMounts removes them.

// CacheSharing says how concurrent users share a cache mount.
type CacheSharing string

const (
	// SharingShared lets every user use the same directory at once.
	SharingShared CacheSharing = "shared"
	// SharingPrivate gives a user a directory no one else is using.
	SharingPrivate CacheSharing = "private"
	// SharingLocked makes a user wait until no one else uses the directory.
	SharingLocked CacheSharing = "locked"
)

// CacheMount is a cache mount directory in use. Release gives it back.
type CacheMount struct {
	Dir string
	f   *os.File
}

// Release unlocks the directory.
func (m *CacheMount) Release() error {
	if m == nil || m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

// cacheMountRoot is the directory of the cache mount named key.
func (s *Store) cacheMountRoot(key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.path("cachemounts", hex.EncodeToString(sum[:]))
}

// lockPoll is how often a waiting cache mount user retries its lock.
const lockPoll = 50 * time.Millisecond

// OpenCacheMount returns the directory of the cache mount named key, locked
// as sharing says; it waits for a lock while ctx allows, calling waiting
// once if it has to wait. When the directory does not exist yet, init (if
// not nil) prepares it (owner, mode, contents) before anyone can use it.
func (s *Store) OpenCacheMount(ctx context.Context, key string, sharing CacheSharing, init func(dir string) error, waiting func()) (*CacheMount, error) {
	how := unix.LOCK_SH
	switch sharing {
	case SharingShared, "":
	case SharingLocked, SharingPrivate:
		how = unix.LOCK_EX
	default:
		return nil, fmt.Errorf("cache mount sharing %q: %w", sharing, ErrInvalid)
	}
	root := s.cacheMountRoot(key)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open cache mount: %w", err)
	}
	told := false
	for n := 0; ; {
		dir := filepath.Join(root, strconv.Itoa(n))
		f, err := s.openCacheInstance(dir, init)
		if err != nil {
			return nil, err
		}
		err = flock(f, how|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			if sharing == SharingPrivate {
				n++ // busy: a private user takes the next instance
				continue
			}
			if !told && waiting != nil {
				waiting()
				told = true
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for cache mount: %w", ctx.Err())
			case <-time.After(lockPoll):
			}
			continue
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock cache mount: %w", err)
		}
		// RemoveCacheMounts may have removed the directory between the open
		// and the lock: then start again with a fresh one.
		if !sameFile(f, dir) {
			f.Close()
			continue
		}
		return &CacheMount{Dir: dir, f: f}, nil
	}
}

// openCacheInstance opens the instance directory dir, creating it (through
// init, then an atomic rename) when missing.
func (s *Store) openCacheInstance(dir string, init func(dir string) error) (*os.File, error) {
	for {
		f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open cache mount: %w", err)
		}
		// Made in tmp/ (the same filesystem), whose debris GC sweeps.
		tmp, err := s.TempDir("cachemount-")
		if err != nil {
			return nil, fmt.Errorf("create cache mount: %w", err)
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("create cache mount: %w", err)
		}
		if init != nil {
			if err := init(tmp); err != nil {
				removeAll(tmp)
				return nil, fmt.Errorf("prepare cache mount: %w", err)
			}
		}
		if err := os.Rename(tmp, dir); err != nil {
			removeAll(tmp)
			// Another process made it first: use theirs.
			if !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
				return nil, fmt.Errorf("create cache mount: %w", err)
			}
		}
	}
}

// sameFile reports whether the open f is still what path names.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// RemoveCacheMounts removes the contents of every cache mount no one is
// using now (those in use are skipped) and returns the bytes freed.
func (s *Store) RemoveCacheMounts() (int64, error) {
	roots, err := os.ReadDir(s.path("cachemounts"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, r := range roots {
		root := s.path("cachemounts", r.Name())
		ents, err := os.ReadDir(root)
		if err != nil {
			return freed, err
		}
		for _, e := range ents {
			p := filepath.Join(root, e.Name())
			f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			if flock(f, unix.LOCK_EX|unix.LOCK_NB) != nil {
				f.Close()
				continue // in use
			}
			freed += SpaceOnDisk(p)
			err = removeAll(p)
			f.Close()
			if err != nil {
				return freed, fmt.Errorf("remove cache mount: %w", err)
			}
		}
		os.Remove(root) // only when empty
	}
	return freed, nil
}
