// Package cache is kiln's local content-addressed store: blobs addressed by
// sha256, layer snapshots extracted once and shared read-only by every build
// step and container, image configs and the references that name them.
//
// Layout under the root:
//
//	lock                    shared flock held by every process using the store
//	blobs/sha256/<hex>      verified content (configs, manifests, compressed layers)
//	layers/<hex>/           one directory per layer diffID:
//	    fs/                 the snapshot (overlay format: 0/0 char-device whiteouts, opaque xattrs)
//	    layer.json          diffID, tar size and the compressed blobs known for it
//	images/<hex>.json       per image config digest: preferred compression, materialized manifest
//	refs.json               name:tag -> image ID (config digest)
//	buildcache/<key>.json   build cache records: step key -> layer; files/ their COPY file lists
//	statcache/              digests of build context files by stat data, to skip re-reading them
//	leases/<kind>-<name>.json  what a container or a running build holds (Lease)
//	tmp/                    work in progress; anything here is garbage once its process is gone
//	trash/                  what nothing references any more, being deleted in the background (trash.go)
//	trash.lock              held by the process deleting the trash
//	    external.*          notes naming temp files a process writes outside the store (kiln save)
//	layers.lock             taken by processes replacing the debris of a layer directory
//
// Every write is atomic: data goes to tmp/, is fsynced and verified, then
// renamed into place, so a crash never leaves a wrong or partial object under a
// digest; a snapshot's files are synced (syncfs) before its record appears.
// Garbage left by a crash is invisible to every command and swept by the next
// process that opens the store alone, or by GC. Check verifies the whole.
package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// imageNotFound is the error for the image name or ID: "no such image:
// NAME: not found", wrapping ErrImageNotFound and ErrNotFound.
func imageNotFound(name any) error {
	return fmt.Errorf("%w: %v: %w", ErrImageNotFound, name, ErrNotFound)
}

// SchemaVersion is the version of the store's layout above. It changes
// when a kiln could no longer read a store an older kiln wrote.
const SchemaVersion = 1

// DefaultRoot is where the store lives when neither --root nor KILN_ROOT says otherwise.
const DefaultRoot = "/var/lib/kiln"

var (
	// ErrNotFound: the blob, layer, image or reference is not in the store.
	ErrNotFound = errors.New("not found")
	// ErrImageNotFound: no image has that ID or name. Its errors wrap
	// ErrNotFound too; it says what is missing (an image, not a cache entry).
	ErrImageNotFound = errors.New("no such image")
	// ErrInvalid: content failed verification or does not parse. It is
	// layer.ErrInvalid, defined once in the lower package: a malformed layer
	// and a malformed blob are the same class of error.
	ErrInvalid = layer.ErrInvalid
	// ErrExists: the object already exists.
	ErrExists = errors.New("already exists")
)

// Store is an open store. It holds a shared lock on the root until Close, so
// that garbage collection, which needs the lock exclusively, never sweeps what a
// live process is using.
type Store struct {
	root string
	lock *os.File
	// view: a Leased view of another Store, sharing its lock.
	view  bool
	lease *leaseState
	// bg counts the deleters that run in this process (test binaries
	// that cannot re-execute themselves as one); Close waits for them.
	// Shared with views.
	bg *sync.WaitGroup
	// deferred, on a view that defers its layers' syncs (DeferLayerSyncs),
	// lists the layers it committed unsynced.
	deferred *deferredSyncs
}

// OpenOptions change how OpenWith opens a store.
type OpenOptions struct {
	// KeepDebris leaves what killed processes left in tmp/ in place (for
	// Check to report). Without it, a process that finds the store unused
	// by any other removes that debris as it opens it.
	KeepDebris bool
}

// Open opens (creating when needed) the store at root. If no other process
// has it open, the debris of killed processes in tmp/ is removed first.
func Open(root string) (*Store, error) { return OpenWith(root, OpenOptions{}) }

// OpenWith opens (creating when needed) the store at root.
func OpenWith(root string, o OpenOptions) (*Store, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	for _, d := range []string{"blobs/sha256", "layers", "images", "leases", "tmp", trashDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
	}
	markTopDir(filepath.Join(abs, "tmp"))
	f, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	s := &Store{root: abs, lock: f, bg: new(sync.WaitGroup)}
	if !o.KeepDebris && flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil {
		// Alone: whatever tmp/ holds is a killed process's.
		s.sweepTmp()
		s.sweepLeases()
		if !trashEmpty(abs) {
			s.startDeleter() // what a killed deleter left; an error leaves it to the next
		}
	}
	if err := flock(f, unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store %s: %w", abs, err)
	}
	return s, nil
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// Close releases the store's lock.
func (s *Store) Close() error {
	if s.view || s.lock == nil {
		return nil
	}
	s.bg.Wait()
	err := s.lock.Close()
	s.lock = nil
	return err
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
