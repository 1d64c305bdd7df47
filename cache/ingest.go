package cache

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

// IngestLayerBlob streams a layer blob (as found in an archive or a registry)
// into the store in one pass: the bytes go to the blob store, verified against
// desc, and at the same time are decompressed and extracted into a new
// snapshot whose tar digest must equal diffID. On any mismatch nothing is kept.
func (s *Store) IngestLayerBlob(ctx context.Context, r io.Reader, desc ocispec.Descriptor, diffID digest.Digest) (Layer, error) {
	if l, err := s.Layer(diffID); err == nil {
		if s.HasBlob(desc.Digest) {
			return l, nil
		}
		// The snapshot exists; keep the blob too so the layer can be exported as it came.
		if _, _, err := s.WriteBlob(ctx, r, desc.Digest, desc.Size); err != nil {
			return Layer{}, err
		}
		return s.addLayerBlob(l, desc)
	}
	bw, err := s.NewBlobWriter()
	if err != nil {
		return Layer{}, err
	}
	sn, err := s.NewSnapshot()
	if err != nil {
		bw.Abort()
		return Layer{}, err
	}
	fail := func(err error) (Layer, error) {
		bw.Abort()
		sn.Discard()
		return Layer{}, err
	}
	tee := io.TeeReader(ctxReader{ctx, r}, bw)
	dr, _, err := layer.Decompress(tee)
	if err != nil {
		return fail(fmt.Errorf("layer %s: %w", desc.Digest, err))
	}
	h := sha256.New()
	n, err := layer.Apply(ctx, sn.Dir, io.TeeReader(dr, h), layer.ApplyOptions{OverlayWhiteouts: true})
	if err == nil {
		// The tar's end padding and the compressed stream's trailer count too.
		var m int64
		m, err = io.Copy(h, dr)
		n += m
	}
	if err == nil {
		_, err = io.Copy(io.Discard, tee)
	}
	dr.Close()
	if err != nil {
		return fail(fmt.Errorf("layer %s: %w", desc.Digest, err))
	}
	if got := digest.NewDigest(digest.SHA256, h); diffID != "" && got != diffID {
		return fail(fmt.Errorf("layer %s: uncompressed content has digest %s, config says %s: %w", desc.Digest, got, diffID, ErrInvalid))
	}
	size := bw.Size()
	got, err := bw.Commit(desc.Digest, desc.Size)
	if err != nil {
		sn.Discard()
		return Layer{}, err
	}
	desc.Digest = got
	if desc.MediaType == "" {
		desc.MediaType = ocispec.MediaTypeImageLayerGzip
	}
	return sn.Commit(diffID, n, false, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: size})
}

// ImportTar turns a root filesystem tarball (plain, gzip or zstd) into a
// canonical layer: the tar is extracted into a snapshot and the layer's tar is
// regenerated from it, so that later exports are byte-identical.
func (s *Store) ImportTar(ctx context.Context, r io.Reader) (Layer, error) {
	sn, err := s.NewSnapshot()
	if err != nil {
		return Layer{}, err
	}
	dr, _, err := layer.Decompress(ctxReader{ctx, r})
	if err != nil {
		sn.Discard()
		return Layer{}, err
	}
	_, err = layer.Apply(ctx, sn.Dir, dr, layer.ApplyOptions{OverlayWhiteouts: true})
	dr.Close()
	if err != nil {
		sn.Discard()
		return Layer{}, err
	}
	return s.CommitDiff(ctx, sn)
}

// ImportDir turns a directory into a canonical layer: its tar is streamed
// straight into a new snapshot while being hashed.
func (s *Store) ImportDir(ctx context.Context, dir string) (Layer, error) {
	if fi, err := os.Stat(dir); err != nil {
		return Layer{}, err
	} else if !fi.IsDir() {
		return Layer{}, fmt.Errorf("%s: not a directory: %w", dir, ErrInvalid)
	}
	sn, err := s.NewSnapshot()
	if err != nil {
		return Layer{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.WriteDiff(ctx, pw, dir, layer.DiffOptions{})) }()
	_, err = layer.Apply(ctx, sn.Dir, pr, layer.ApplyOptions{OverlayWhiteouts: true})
	if err == nil {
		_, err = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(err)
	if err != nil {
		sn.Discard()
		return Layer{}, fmt.Errorf("import %s: %w", dir, err)
	}
	// Recompute from the snapshot itself: that is what later exports regenerate.
	return s.CommitDiff(ctx, sn)
}

// CommitDiff computes the layer tar of the snapshot's directory (an overlay
// upperdir or an extracted tree) and commits the snapshot under its diffID.
// The tar is only hashed here; compressed blobs are made when first needed.
func (s *Store) CommitDiff(ctx context.Context, sn *Snapshot) (Layer, error) {
	return s.CommitStreamed(ctx, sn, nil)
}

// CommitStreamed is CommitDiff for a snapshot whose layer tar was streamed
// while Dir was filled: when streamed verifies against Dir, Dir's files are
// not read again; otherwise Dir is diffed as by CommitDiff. streamed may be
// nil.
func (s *Store) CommitStreamed(ctx context.Context, sn *Snapshot, streamed *layer.StreamDiff) (Layer, error) {
	// Dir is diffed from the page cache before anything is synced: a
	// duplicate of an existing layer (a --no-cache re-run) is never made
	// durable, only a new layer is (Commit).
	var res layer.Result
	ok, err := false, error(nil)
	if streamed != nil {
		res, ok, err = streamed.Verify(ctx, sn.Dir)
	}
	if err == nil && !ok {
		// Writeback: the files' data starts for the disk as it is hashed,
		// so a new layer's sync only waits for the tail; a duplicate is
		// never synced, its writes only started (and dropped with it).
		// DropPages: a new layer's large files leave the page cache once
		// synced (see pageDropLimit).
		sn.drops = layer.NewPageDrops(pageDropLimit())
		res, err = layer.Write(ctx, io.Discard, sn.Dir, layer.Uncompressed, layer.DiffOptions{Writeback: true, DropPages: sn.drops})
	}
	if err != nil {
		sn.Discard()
		return Layer{}, fmt.Errorf("diff snapshot: %w", err)
	}
	return sn.Commit(res.DiffID, res.Size, true)
}
