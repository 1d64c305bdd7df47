package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// A build makes a layer per RUN or COPY step, and a sync of the
// filesystem per layer (its files reach the disk before a record may name
// it) costs every step a round trip to the disk, and far more when other
// processes have written much: syncfs writes all of the filesystem's dirty
// data. A build's steps instead publish their layers unsynced, marked with
// the boot they were made under (Layer.Unsynced), and sync them together
// before anything durable names them:
//
//	commit:   the snapshot and its marked record are renamed into layers/,
//	          nothing synced; the build's records and lease name it (neither
//	          is synced either)
//	sync:     syncfs (the layers' files and the renames), then each record
//	          rewritten without its mark, then syncfs again; PutImage does
//	          it for the layers its image lists, the build for the rest of
//	          its layers as it ends
//
// A kill at any point loses nothing (the page cache has it all), and the
// marks stay valid for as long as the machine runs. After a power cut a
// marked layer is checked once, when first looked up: if its snapshot
// regenerates its tar, nothing was lost and it is unmarked; else it is no
// layer (Layer reports it damaged): no build takes it as a cache hit or a
// lower, the records naming it are misses, its next commit replaces it and
// Check's repair removes it. An image names a layer whose files were lost
// in no case: PutImage syncs the marked layers it lists first, and one it
// found unmarked was synced (the mark goes only after a syncfs; the
// rewrite itself may be lost in the power cut, the check then unmarks it).

// bootID identifies the running kernel's boot: a mark made under another is
// stale. A test replaces it to stand for a restart of the machine.
var bootID = sync.OnceValue(func() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
})

// deferredSyncs is what a view that defers its layers' syncs keeps.
type deferredSyncs struct {
	// f was opened before the first deferred layer was written: syncfs
	// on it reports any writeback error of the filesystem since.
	f       *os.File
	mu      sync.Mutex
	pending []digest.Digest
	// drops are the pending layers' large files, whose pages SyncLayers
	// drops once it has synced them; held counts their descriptors, at
	// most heldDropLayers*pageDropLimit().
	drops []*layer.PageDrops
	held  int
}

// heldDropLayers: a deferring view holds as many descriptors of its
// layers' large files as this many layers can have (pageDropLimit); the
// files of a layer beyond that keep their pages.
const heldDropLayers = 4

// add records the layer diffID as committed unsynced, with its large files.
func (d *deferredSyncs) add(diffID digest.Digest, drops *layer.PageDrops) {
	d.mu.Lock()
	d.pending = append(d.pending, diffID)
	if n := drops.Len(); n > 0 && d.held+n <= heldDropLayers*pageDropLimit() {
		d.drops = append(d.drops, drops)
		d.held += n
		drops = nil
	}
	d.mu.Unlock()
	drops.Close()
}

// DeferLayerSyncs makes the canonical layers committed through this view
// (CommitDiff, CommitStreamed) unsynced until PutImage lists them or
// SyncLayers is called, as a build's steps are (see Layer.Unsynced). It
// does nothing where the boot cannot be told (no /proc). s must be a view
// of its own (Leased): the caller calls SyncLayers when done with it.
func (s *Store) DeferLayerSyncs() error {
	if bootID() == "" {
		return nil
	}
	f, err := os.Open(s.path("layers"))
	if err != nil {
		return fmt.Errorf("defer layer syncs: %w", err)
	}
	s.deferred = &deferredSyncs{f: f}
	return nil
}

// SyncLayers syncs the layers committed unsynced through this view that are
// still so, and stops deferring.
func (s *Store) SyncLayers() error {
	d := s.deferred
	if d == nil {
		return nil
	}
	s.deferred = nil
	defer d.f.Close()
	d.mu.Lock()
	pending, drops := d.pending, d.drops
	d.pending, d.drops, d.held = nil, nil, 0
	d.mu.Unlock()
	var ls []Layer
	for _, diffID := range pending {
		if l, err := s.Layer(diffID); err == nil && l.Unsynced != "" {
			ls = append(ls, l)
		}
	}
	err := s.syncLayers(d.f, ls)
	// Every pending layer is durable now (synced here, by PutImage or by
	// another process): its large files leave the page cache, whose pages
	// the next writes reuse. Not after a failed sync: its dirty pages
	// stay with the kernel's own writeback.
	for _, p := range drops {
		if err == nil {
			p.Drop()
		} else {
			p.Close()
		}
	}
	return err
}

// pageDropLimit is how many large files of a new layer CommitDiff holds
// open to drop their pages from the page cache once the layer is synced
// (layer.PageDrops): 256, or fewer when the process may open few files.
var pageDropLimit = sync.OnceValue(func() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return int(min(256, rl.Cur/32))
})

// syncLayers makes the unsynced layers ls durable and clears their marks.
// f is a file of the store's filesystem, opened before they were written
// if possible (see deferredSyncs.f), else nil.
func (s *Store) syncLayers(f *os.File, ls []Layer) error {
	if len(ls) == 0 {
		return nil
	}
	if f == nil {
		var err error
		if f, err = os.Open(s.path("layers")); err != nil {
			return fmt.Errorf("sync layers: %w", err)
		}
		defer f.Close()
	}
	// The files first (and the renames that published them), then the
	// records that say so: a power cut between leaves marked records,
	// which stand for nothing after it.
	if err := syncFS(f); err != nil {
		return fmt.Errorf("sync layers: %w", err)
	}
	for _, l := range ls {
		if again, err := s.Layer(l.DiffID); err == nil {
			l = again // a blob another process added meanwhile
		}
		if l.Unsynced == "" {
			continue
		}
		l.Unsynced = ""
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
		if err := s.replaceFile(s.layerPath(l.DiffID, "layer.json"), data); err != nil {
			return fmt.Errorf("sync layer %s: %w", l.DiffID, err)
		}
	}
	if err := syncFS(f); err != nil {
		return fmt.Errorf("sync layers: %w", err)
	}
	return nil
}
