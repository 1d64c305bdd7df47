package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"
)

// maxMetadataBlob bounds the size of a manifest, index or config read into memory.
const maxMetadataBlob = 16 << 20

// BlobWriter streams content into the store. Nothing is visible under a digest
// until Commit has verified it.
type BlobWriter struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	size int64
}

// NewBlobWriter starts writing a blob.
func (s *Store) NewBlobWriter() (*BlobWriter, error) {
	f, err := s.tempFile("blob.*")
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	return &BlobWriter{s: s, f: f, h: sha256.New()}, nil
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Digest is the digest of what has been written so far.
func (w *BlobWriter) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.size }

// Commit verifies the written content against expected (when not empty) and
// size (when >= 0), fsyncs it and renames it into place. A mismatch discards
// the content and returns an error wrapping ErrInvalid.
func (w *BlobWriter) Commit(expected digest.Digest, size int64) (digest.Digest, error) {
	d, err := w.commit(expected, size)
	if err == nil {
		err = w.s.hold(nil, nil, []digest.Digest{d})
	}
	return d, err
}

func (w *BlobWriter) commit(expected digest.Digest, size int64) (digest.Digest, error) {
	got := w.Digest()
	if size >= 0 && size != w.size {
		w.Abort()
		return "", fmt.Errorf("blob %s: size %d, expected %d: %w", expected, w.size, size, ErrInvalid)
	}
	if expected != "" && expected != got {
		w.Abort()
		return "", fmt.Errorf("blob %s: content has digest %s: %w", expected, got, ErrInvalid)
	}
	target := w.s.blobPath(got)
	if _, err := os.Stat(target); err == nil {
		w.Abort()
		return got, nil
	}
	if err := commitFile(w.f, target); err != nil {
		os.Remove(w.f.Name())
		return "", fmt.Errorf("commit blob %s: %w", got, err)
	}
	return got, nil
}

// Abort discards the content written so far.
func (w *BlobWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// WriteBlob stores the content of r, verified against expected when it is not empty.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, expected digest.Digest, size int64) (digest.Digest, int64, error) {
	if expected != "" {
		if err := expected.Validate(); err != nil {
			return "", 0, fmt.Errorf("blob %q: %w", expected, ErrInvalid)
		}
		if s.HasBlob(expected) {
			return expected, s.blobSize(expected), nil
		}
	}
	w, err := s.NewBlobWriter()
	if err != nil {
		return "", 0, err
	}
	if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
		w.Abort()
		return "", 0, fmt.Errorf("write blob %s: %w", expected, err)
	}
	n := w.Size()
	d, err := w.Commit(expected, size)
	return d, n, err
}

// WriteJSON marshals v and stores it as a blob.
func (s *Store) WriteJSON(ctx context.Context, v any) (digest.Digest, []byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	d, _, err := s.WriteBlob(ctx, bytes.NewReader(data), "", int64(len(data)))
	return d, data, err
}

// HasBlob reports whether the blob is in the store.
func (s *Store) HasBlob(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

func (s *Store) blobSize(d digest.Digest) int64 {
	fi, err := os.Stat(s.blobPath(d))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// OpenBlob opens a blob for reading.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, ErrInvalid)
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return f, err
}

// ReadBlob reads a small blob (manifest, index, config) whole and verifies its digest.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMetadataBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(data) > maxMetadataBlob {
		return nil, fmt.Errorf("blob %s: larger than %d bytes: %w", d, maxMetadataBlob, ErrInvalid)
	}
	if digest.FromBytes(data) != d {
		return nil, fmt.Errorf("blob %s: content does not match its digest: %w", d, ErrInvalid)
	}
	return data, nil
}

func (s *Store) blobPath(d digest.Digest) string {
	return s.path("blobs", string(d.Algorithm()), d.Encoded())
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
