package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

// A cache directory (--cache-to type=local,dest=DIR, --cache-from
// type=local,src=DIR) carries build cache records between machines:
//
//	DIR/kiln-cache.json     the records, each with its layer's blob descriptor
//	DIR/blobs/sha256/<hex>  the compressed layer blobs
//
// Export adds to what the directory holds; import fetches a layer only when a
// build hits its record.

const cacheIndexName = "kiln-cache.json"

// ExportedRecord is a cache record as a cache directory holds it.
type ExportedRecord struct {
	CacheRecord
	Layer *ocispec.Descriptor `json:"layer,omitempty"`
	// DiffSize is the layer's uncompressed tar size.
	DiffSize int64 `json:"diffSize,omitempty"`
}

type cacheIndex struct {
	Records []ExportedRecord `json:"records"`
}

func readCacheIndex(dir string) (map[digest.Digest]ExportedRecord, error) {
	out := map[digest.Digest]ExportedRecord{}
	data, err := os.ReadFile(filepath.Join(dir, cacheIndexName))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var idx cacheIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, cacheIndexName), ErrInvalid)
	}
	for _, r := range idx.Records {
		out[r.Key] = r
	}
	return out, nil
}

// ExportCache writes records, with their layers compressed as c, into dir.
// Blobs the directory has already are not written again.
func (s *Store) ExportCache(ctx context.Context, dir string, records []CacheRecord, c layer.Compression) error {
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	idx, err := readCacheIndex(dir)
	if err != nil {
		return err
	}
	for _, r := range records {
		e := ExportedRecord{CacheRecord: r}
		if r.DiffID != "" {
			l, err := s.Layer(r.DiffID)
			if err != nil {
				return err
			}
			desc, err := s.layerBlobPreferExisting(ctx, r.DiffID, c)
			if err != nil {
				return err
			}
			if err := s.copyBlobTo(desc.Digest, filepath.Join(blobDir, desc.Digest.Encoded())); err != nil {
				return err
			}
			e.Layer, e.DiffSize = &desc, l.Size
		}
		idx[r.Key] = e
	}
	out := cacheIndex{Records: []ExportedRecord{}}
	for _, e := range idx {
		out.Records = append(out.Records, e)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".kiln-cache-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := commitFile(tmp, filepath.Join(dir, cacheIndexName)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func (s *Store) copyBlobTo(d digest.Digest, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	src, err := s.OpenBlob(d)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".blob-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := commitFile(tmp, dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// CacheSource is a cache directory opened for import.
type CacheSource struct {
	dir     string
	records map[digest.Digest]ExportedRecord
}

// OpenCacheSource reads a cache directory's index.
func OpenCacheSource(dir string) (*CacheSource, error) {
	idx, err := readCacheIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("cache source %s: %w", dir, err)
	}
	return &CacheSource{dir: dir, records: idx}, nil
}

// Restore brings the record for key, and its layer, from the cache source
// into the store. The layer blob is verified (digest, size, diffID) as it
// streams in.
func (s *Store) Restore(ctx context.Context, src *CacheSource, key digest.Digest) (CacheRecord, bool, error) {
	e, ok := src.records[key]
	if !ok {
		return CacheRecord{}, false, nil
	}
	if e.DiffID != "" {
		if _, err := s.Layer(e.DiffID); err != nil {
			if e.Layer == nil {
				return CacheRecord{}, false, nil
			}
			f, err := os.Open(filepath.Join(src.dir, "blobs", "sha256", e.Layer.Digest.Encoded()))
			if err != nil {
				return CacheRecord{}, false, fmt.Errorf("cache source %s: %w", src.dir, err)
			}
			_, err = s.IngestLayerBlob(ctx, f, *e.Layer, e.DiffID)
			f.Close()
			if err != nil {
				return CacheRecord{}, false, fmt.Errorf("cache source %s: %w", src.dir, err)
			}
		}
	}
	if err := s.PutCacheRecord(e.CacheRecord); err != nil {
		return CacheRecord{}, false, err
	}
	return e.CacheRecord, true, nil
}
