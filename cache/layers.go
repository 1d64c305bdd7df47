package cache

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// Layer is what the store records of a layer, keyed by its diffID (the digest
// of its uncompressed tar).
type Layer struct {
	DiffID digest.Digest `json:"diffID"`
	// Size is the size of the uncompressed tar.
	Size int64 `json:"size"`
	// Blobs are the compressed (or uncompressed) forms of the layer present in
	// the blob store.
	Blobs []ocispec.Descriptor `json:"blobs,omitempty"`
	// Canonical says that the snapshot regenerates the layer tar byte for byte
	// (layer.WriteDiff of the snapshot has digest DiffID): true for layers
	// built or imported by kiln, false for layers loaded or pulled as blobs.
	Canonical bool `json:"canonical,omitempty"`
	// Unsynced, when set, is the boot ID of the kernel (see bootID) under
	// which the layer was committed without a sync: a build's steps
	// (Store.DeferLayerSyncs) publish their layers at once and sync them
	// all in one go before anything durable names them (an image record:
	// PutImage syncs the layers it lists that are still unsynced, and the
	// build syncs the rest as it ends: SyncLayers). Until then a power cut
	// may lose their files; under another boot such a record stands for
	// nothing (Layer reports it damaged, Check's repair removes it, the
	// next commit of the layer replaces it) unless its snapshot still
	// regenerates it (verifyUnsynced): no later build takes a snapshot
	// whose files were lost.
	Unsynced string `json:"unsynced,omitempty"`
}

// EmptyLayer reports whether the layer changes nothing (a tar with no entries).
func (l Layer) EmptyLayer() bool { return l.Size <= 1024 }

// Layer returns the record of the layer with the given diffID.
func (s *Store) Layer(diffID digest.Digest) (Layer, error) {
	if err := diffID.Validate(); err != nil {
		return Layer{}, fmt.Errorf("layer %q: %w", diffID, ErrInvalid)
	}
	data, err := os.ReadFile(s.layerPath(diffID, "layer.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Layer{}, fmt.Errorf("layer %s: %w", diffID, ErrNotFound)
	}
	if err != nil {
		return Layer{}, fmt.Errorf("read layer %s: %w", diffID, err)
	}
	var l Layer
	if err := json.Unmarshal(data, &l); err != nil || l.DiffID != diffID {
		return Layer{}, fmt.Errorf("layer %s: bad record: %w", diffID, ErrInvalid)
	}
	if l.Unsynced != "" && l.Unsynced != bootID() && !s.verifyUnsynced(&l) {
		return Layer{}, fmt.Errorf("layer %s: committed without a sync before the machine restarted, and its files are not all there: %w", diffID, ErrInvalid)
	}
	return l, nil
}

// verifyUnsynced checks a layer committed unsynced under an earlier boot
// (see Layer.Unsynced): if its snapshot still regenerates its tar, nothing
// was lost (another process may have synced it and named it in an image
// before the restart), and its record is rewritten unmarked, so that it is
// checked once. One that lost files is checked again at each lookup until
// the next commit of the layer replaces it or Check's repair removes it.
func (s *Store) verifyUnsynced(l *Layer) bool {
	if !l.Canonical {
		return false
	}
	res, err := layer.Write(context.Background(), io.Discard, s.SnapshotDir(l.DiffID), layer.Uncompressed, layer.DiffOptions{})
	if err != nil || res.DiffID != l.DiffID || res.Size != l.Size {
		return false
	}
	l.Unsynced = ""
	if data, err := json.Marshal(l); err == nil {
		_ = s.writeFileAtomic(s.layerPath(l.DiffID, "layer.json"), data) // else checked again next time
	}
	return true
}

// SnapshotDir is the directory holding the layer's extracted files, in overlay
// format, to be used read-only as an overlay lowerdir.
func (s *Store) SnapshotDir(diffID digest.Digest) string {
	return s.layerPath(diffID, "fs")
}

func (s *Store) layerPath(diffID digest.Digest, elem ...string) string {
	return s.path(append([]string{"layers", diffID.Encoded()}, elem...)...)
}

// Snapshot is a directory being filled that becomes a layer's snapshot on Commit.
//
// Lifecycle: NewSnapshot → fill Dir (an overlay upperdir whose workdir is
// Work, or an extraction target) → Commit(diffID, size) or Discard.
type Snapshot struct {
	s    *Store
	tmp  string
	Dir  string // the future snapshot: an overlay upperdir or extraction target
	Work string // an overlay workdir on the same filesystem
	// Mountpoint is an empty directory for mounting the merged tree.
	Mountpoint string
	// fsf is tmp, opened when the snapshot is made: syncfs(2) on it reports
	// any writeback error of the filesystem since then (errseq sampled at
	// open), so data the disk failed to write while Dir was being filled,
	// before the sync, still fails the commit.
	fsf *os.File
	// drops are Dir's large files (CommitDiff), whose pages leave the
	// page cache once the new layer is durable; a discarded snapshot
	// closes them.
	drops *layer.PageDrops
}

// NewSnapshot prepares a fresh snapshot directory.
func (s *Store) NewSnapshot() (*Snapshot, error) {
	tmp, err := s.TempDir("snap.")
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	sn := &Snapshot{s: s, tmp: tmp, Dir: filepath.Join(tmp, "fs"), Work: filepath.Join(tmp, "work"), Mountpoint: filepath.Join(tmp, "merged")}
	for _, d := range []string{sn.Dir, sn.Work, sn.Mountpoint} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("prepare snapshot: %w", err)
		}
	}
	if sn.fsf, err = os.Open(tmp); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	return sn, nil
}

// Commit records the snapshot as the layer with the given diffID and tar size.
// canonical says whether layer.WriteDiff of Dir regenerates that exact tar. If
// the layer exists already, the new snapshot is discarded and the existing
// record returned.
func (sn *Snapshot) Commit(diffID digest.Digest, size int64, canonical bool, blobs ...ocispec.Descriptor) (Layer, error) {
	l, err := sn.commit(diffID, size, canonical, blobs...)
	if err == nil {
		err = sn.s.hold(nil, []digest.Digest{diffID}, nil)
	}
	return l, err
}

// StreamedLayer lets a maker that streams its layer tar before writing any
// of it (a --no-cache re-run of a COPY) find that layer in the store, and
// not write a duplicate of its snapshot only to trash it. likely is the
// layer the stream most probably is (the last run's): its snapshot's
// metadata is read meanwhile. Once the stream is complete, the returned
// function gives the store's layer of that tar. The store's records are not
// trusted for it: the streamed tar's digest is the layer's diffID, and
// every entry of the layer's snapshot has the streamed metadata
// (StreamDiff.VerifyHeaders), so the snapshot is what writing the stream
// gives. ok is false when the store has no such layer or its snapshot
// differs.
func (s *Store) StreamedLayer(ctx context.Context, likely digest.Digest) func(streamed *layer.StreamDiff) (l Layer, ok bool, err error) {
	type headers struct {
		sum []byte
		err error
	}
	read := func(diffID digest.Digest) headers {
		sum, err := layer.DiffHeaders(ctx, s.SnapshotDir(diffID))
		return headers{sum, err}
	}
	pre := make(chan headers, 1)
	go func() { pre <- read(likely) }()
	return func(streamed *layer.StreamDiff) (Layer, bool, error) {
		res, err := streamed.Result()
		if err != nil {
			return Layer{}, false, nil
		}
		l, err := s.Layer(res.DiffID)
		if err != nil || l.Size != res.Size {
			return Layer{}, false, nil
		}
		var h headers
		if res.DiffID == likely {
			h = <-pre
		} else {
			h = read(res.DiffID)
		}
		if h.err != nil {
			return Layer{}, false, ctx.Err()
		}
		if _, ok := streamed.VerifyHeaders(h.sum); !ok {
			return Layer{}, false, nil
		}
		return l, true, s.hold(nil, []digest.Digest{l.DiffID}, nil)
	}
}

func (sn *Snapshot) commit(diffID digest.Digest, size int64, canonical bool, blobs ...ocispec.Descriptor) (Layer, error) {
	defer sn.Discard()
	if l, err := sn.s.Layer(diffID); err == nil {
		// The same layer again (a --no-cache rebuild): its copy, never
		// synced, goes to the trash (with luck before its dirty pages are
		// written at all), deleted in the background.
		sn.Discard()
		for _, b := range blobs {
			l, _ = sn.s.addLayerBlob(l, b)
		}
		return l, nil
	}
	l := Layer{DiffID: diffID, Size: size, Blobs: blobs, Canonical: canonical}
	deferred := sn.s.deferred != nil && canonical
	if deferred {
		l.Unsynced = bootID()
	}
	data, err := json.Marshal(l)
	if err != nil {
		return Layer{}, err
	}
	// Everything but the layer directory itself goes to tmp; one rename
	// publishes the snapshot and its record together. A build step's
	// overlay work directory (a few directories: milliseconds to remove on
	// a busy disk) is removed in the background, beside the snapshot in
	// tmp/ (swept with the rest of tmp/ if the process is killed first).
	if deferred {
		sn.s.removeInBackground(sn.Work, sn.tmp+".work")
	} else {
		os.RemoveAll(sn.Work)
	}
	os.Remove(sn.Mountpoint)
	if err := os.WriteFile(filepath.Join(sn.tmp, "layer.json"), data, 0o644); err != nil {
		return Layer{}, fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	// The snapshot's files, and its record beside them, reach the disk
	// before the rename publishes them: after a power cut a record never
	// names a snapshot with lost data. One syncfs writes them all (the
	// record needs no fsync of its own). Only a new layer is synced: its
	// diffID, known now, said it is new. A deferred layer is synced
	// later, with the build's others (Layer.Unsynced).
	if !deferred {
		if err := syncFS(sn.fsf); err != nil {
			return Layer{}, fmt.Errorf("commit layer %s: %w", diffID, err)
		}
	}
	target := sn.s.layerPath(diffID)
	err = os.Rename(sn.tmp, target)
	if err != nil && (errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY)) {
		if l, err2 := sn.s.Layer(diffID); err2 == nil {
			return l, nil // another process committed it first
		}
		// A layer directory without a valid record is crash debris (a
		// killed commit or GC, an unsynced layer of an earlier boot):
		// replace it.
		err = sn.s.replaceDebris(diffID, sn.tmp)
	}
	if err != nil {
		if l, err2 := sn.s.Layer(diffID); err2 == nil {
			return l, nil // another process committed it first
		}
		return Layer{}, fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	sn.tmp = ""
	if deferred {
		sn.s.deferred.add(diffID, sn.drops)
		sn.drops = nil
		return l, nil
	}
	// synced (before the rename): its pages are clean
	sn.drops.Drop()
	sn.drops = nil
	return l, syncDir(filepath.Dir(target))
}

// replaceDebris renames dir to the directory of layer diffID, which has no
// valid record. Processes that meet the same debris take turns
// (an exclusive flock of layers.lock), so none removes a layer another just
// committed there. The debris goes to the trash in one rename: a kill
// during its removal leaves trash, not another half-removed layer
// directory.
func (s *Store) replaceDebris(diffID digest.Digest, dir string) error {
	target := s.layerPath(diffID)
	lf, err := os.OpenFile(s.path("layers.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return err
	}
	if _, err := s.Layer(diffID); err == nil {
		return fs.ErrExist // committed meanwhile: the caller reads that record
	}
	if err := s.Trash(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(dir, target)
}

// removeInBackground renames the tree at path to aside, a fresh name on
// the same filesystem, and removes it there in a goroutine that Close waits
// for. If the rename fails, the tree is removed at once.
func (s *Store) removeInBackground(path, aside string) {
	if os.Rename(path, aside) != nil {
		removeAll(path)
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		removeAll(aside)
	}()
}

// Discard removes the snapshot unless it was committed: it goes to the
// trash, deleted in the background.
func (sn *Snapshot) Discard() {
	sn.drops.Close()
	sn.drops = nil
	if sn.fsf != nil {
		sn.fsf.Close()
		sn.fsf = nil
	}
	if sn.tmp != "" {
		if err := sn.s.Trash(sn.tmp); err != nil {
			removeAll(sn.tmp)
		}
		sn.tmp = ""
	}
}

func (s *Store) addLayerBlob(l Layer, desc ocispec.Descriptor) (Layer, error) {
	for _, b := range l.Blobs {
		if b.Digest == desc.Digest {
			return l, nil
		}
	}
	l.Blobs = append(l.Blobs, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size})
	data, err := json.Marshal(l)
	if err != nil {
		return l, err
	}
	if err := s.writeFileAtomic(s.layerPath(l.DiffID, "layer.json"), data); err != nil {
		return l, fmt.Errorf("record blob of layer %s: %w", l.DiffID, err)
	}
	return l, nil
}

// LayerBlob returns a blob of the layer compressed with c, creating it when
// the store has none: from another blob of the layer if there is one, else by
// regenerating the tar from the snapshot. The regenerated tar must have the
// recorded diffID, or nothing is stored.
func (s *Store) LayerBlob(ctx context.Context, diffID digest.Digest, c layer.Compression) (ocispec.Descriptor, error) {
	l, err := s.Layer(diffID)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, b := range l.Blobs {
		if b.MediaType == c.MediaType() && s.HasBlob(b.Digest) {
			return b, nil
		}
	}
	w, err := s.NewBlobWriter()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var src io.Reader
	var srcClose func()
	if b, ok := s.anyBlob(l); ok {
		f, err := s.OpenBlob(b.Digest)
		if err != nil {
			w.Abort()
			return ocispec.Descriptor{}, err
		}
		rc, _, err := layer.Decompress(f)
		if err != nil {
			f.Close()
			w.Abort()
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: blob %s: %w", diffID, b.Digest, err)
		}
		src, srcClose = rc, func() { rc.Close(); f.Close() }
	} else if l.Canonical {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(layer.WriteDiff(ctx, pw, s.SnapshotDir(diffID), layer.DiffOptions{}))
		}()
		src, srcClose = pr, func() { pr.Close() }
	} else {
		w.Abort()
		return ocispec.Descriptor{}, fmt.Errorf("layer %s: no blob and no canonical snapshot: %w", diffID, ErrNotFound)
	}
	defer srcClose()
	diffH := sha256.New()
	cw, err := layer.Compress(w, c)
	if err != nil {
		w.Abort()
		return ocispec.Descriptor{}, err
	}
	n, err := io.Copy(io.MultiWriter(cw, diffH), ctxReader{ctx, src})
	if err == nil {
		err = cw.Close()
	}
	if err != nil {
		w.Abort()
		return ocispec.Descriptor{}, fmt.Errorf("compress layer %s: %w", diffID, err)
	}
	if got := digest.NewDigest(digest.SHA256, diffH); got != diffID || n != l.Size {
		w.Abort()
		return ocispec.Descriptor{}, fmt.Errorf("layer %s: regenerated tar has digest %s (%d bytes, expected %d): %w", diffID, got, n, l.Size, ErrInvalid)
	}
	size := w.Size()
	d, err := w.Commit("", -1)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: c.MediaType(), Digest: d, Size: size}
	if _, err := s.addLayerBlob(l, desc); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

func (s *Store) anyBlob(l Layer) (ocispec.Descriptor, bool) {
	for _, b := range l.Blobs {
		if s.HasBlob(b.Digest) {
			return b, true
		}
	}
	return ocispec.Descriptor{}, false
}

// ContentSize is the total size of the regular files in the layer's snapshot,
// the size docker reports for a layer in `docker history` and `docker images`.
func (s *Store) ContentSize(diffID digest.Digest) (int64, error) {
	u, err := layer.DiskUsage(s.SnapshotDir(diffID))
	if err != nil {
		return 0, fmt.Errorf("size of layer %s: %w", diffID, err)
	}
	return u.Size, nil
}
