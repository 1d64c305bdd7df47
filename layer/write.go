package layer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// Result describes a layer blob produced by Write.
type Result struct {
	DiffID         digest.Digest // sha256 of the uncompressed tar
	Size           int64         // uncompressed tar size in bytes
	Digest         digest.Digest // sha256 of the compressed stream (== DiffID when Uncompressed)
	CompressedSize int64
	MediaType      string
}

// Write produces the layer tar of dir (see WriteDiff), compresses it with c
// and streams the blob to dst, computing diffID and digest on the way, in
// one pass without temporary files. The tar is produced in a second
// goroutine so that walking and hashing overlap with compression.
func Write(ctx context.Context, dst io.Writer, dir string, c Compression, opts DiffOptions) (Result, error) {
	mediaType := c.MediaType()
	if mediaType == "" {
		return Result{}, fmt.Errorf("write layer: compression %q: %w", c, ErrInvalid)
	}
	if c == Uncompressed {
		tarW := newHashWriter(dst)
		err := WriteDiff(ctx, tarW, dir, opts)
		if cerr := tarW.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Result{}, fmt.Errorf("write layer: %w", err)
		}
		d := tarW.digest()
		return Result{DiffID: d, Size: tarW.n, Digest: d, CompressedSize: tarW.n, MediaType: mediaType}, nil
	}

	blobW := newDigestWriter(dst)
	zw, err := Compress(blobW, c)
	if err != nil {
		return Result{}, fmt.Errorf("write layer: %w", err)
	}
	pr, pw := io.Pipe()
	tarW := newDigestWriter(pw)
	diffDone := make(chan error, 1)
	go func() {
		err := WriteDiff(ctx, tarW, dir, opts)
		pw.CloseWithError(err)
		diffDone <- err
	}()
	_, copyErr := io.CopyBuffer(zw, readerOnly{pr}, make([]byte, copyBufferSize))
	// Unblock the producer if compression or dst failed.
	pr.CloseWithError(errAborted)
	diffErr := <-diffDone
	closeErr := zw.Close()
	switch {
	case diffErr != nil && !errors.Is(diffErr, errAborted):
		return Result{}, fmt.Errorf("write layer: %w", diffErr)
	case copyErr != nil:
		return Result{}, fmt.Errorf("write layer: compress: %w", copyErr)
	case closeErr != nil:
		return Result{}, fmt.Errorf("write layer: finish compression: %w", closeErr)
	}
	return Result{
		DiffID:         tarW.digest(),
		Size:           tarW.n,
		Digest:         blobW.digest(),
		CompressedSize: blobW.n,
		MediaType:      mediaType,
	}, nil
}

var errAborted = errors.New("layer write aborted")

// readerOnly hides any WriterTo so io.CopyBuffer uses the given buffer.
type readerOnly struct{ io.Reader }

// digestWriter forwards writes to w and hashes and counts what w accepted.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter {
	return &digestWriter{w: w, h: sha256.New()}
}

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *digestWriter) digest() digest.Digest {
	return digest.NewDigest(digest.SHA256, d.h)
}
