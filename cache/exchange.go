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
	"sort"

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

// CacheIndex is the list of records a cache directory or a registry cache
// image holds.
type CacheIndex struct {
	Records []ExportedRecord `json:"records"`
}

// ParseCacheIndex reads a cache index into a map by key.
func ParseCacheIndex(data []byte) (map[digest.Digest]ExportedRecord, error) {
	var idx CacheIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("cache index: %v: %w", err, ErrInvalid)
	}
	out := map[digest.Digest]ExportedRecord{}
	for _, r := range idx.Records {
		out[r.Key] = r
	}
	return out, nil
}

// MarshalCacheIndex writes records as a cache index, in a stable order.
func MarshalCacheIndex(records map[digest.Digest]ExportedRecord) ([]byte, error) {
	out := CacheIndex{Records: []ExportedRecord{}}
	for _, e := range records {
		out.Records = append(out.Records, e)
	}
	sort.Slice(out.Records, func(i, j int) bool { return out.Records[i].Key < out.Records[j].Key })
	return json.MarshalIndent(out, "", "  ")
}

// ExportRecord is a record ready to leave the store: its layer compressed
// (an existing blob is kept) and described.
func (s *Store) ExportRecord(ctx context.Context, r CacheRecord, c layer.Compression) (ExportedRecord, error) {
	e := ExportedRecord{CacheRecord: r}
	if r.DiffID == "" {
		return e, nil
	}
	l, err := s.Layer(r.DiffID)
	if err != nil {
		return e, err
	}
	desc, err := s.layerBlobPreferExisting(ctx, r.DiffID, c)
	if err != nil {
		return e, err
	}
	e.Layer, e.DiffSize = &desc, l.Size
	return e, nil
}

// ImportRecord brings an exported record into the store, its layer read
// from blob (called only when the store lacks the layer) and verified as it
// streams in.
func (s *Store) ImportRecord(ctx context.Context, e ExportedRecord, blob func() (io.ReadCloser, error)) (CacheRecord, error) {
	if e.DiffID != "" {
		if _, err := s.Layer(e.DiffID); err != nil {
			if e.Layer == nil {
				return CacheRecord{}, fmt.Errorf("cache record %s: no layer: %w", e.Key, ErrInvalid)
			}
			rc, err := blob()
			if err != nil {
				return CacheRecord{}, err
			}
			_, err = s.IngestLayerBlob(ctx, rc, *e.Layer, e.DiffID)
			rc.Close()
			if err != nil {
				return CacheRecord{}, err
			}
		}
	}
	return e.CacheRecord, s.PutCacheRecord(e.CacheRecord)
}

func readCacheIndex(dir string) (map[digest.Digest]ExportedRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, cacheIndexName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[digest.Digest]ExportedRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	idx, err := ParseCacheIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, cacheIndexName), err)
	}
	return idx, nil
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
		e, err := s.ExportRecord(ctx, r, c)
		if err != nil {
			return err
		}
		if e.Layer != nil {
			if err := s.copyBlobTo(e.Layer.Digest, filepath.Join(blobDir, e.Layer.Digest.Encoded())); err != nil {
				return err
			}
		}
		idx[r.Key] = e
	}
	data, err := MarshalCacheIndex(idx)
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
func (src *CacheSource) Restore(ctx context.Context, s *Store, key digest.Digest) (CacheRecord, bool, error) {
	e, ok := src.records[key]
	if !ok {
		return CacheRecord{}, false, nil
	}
	rec, err := s.ImportRecord(ctx, e, func() (io.ReadCloser, error) {
		return os.Open(filepath.Join(src.dir, "blobs", "sha256", e.Layer.Digest.Encoded()))
	})
	if err != nil {
		return CacheRecord{}, false, fmt.Errorf("cache source %s: %w", src.dir, err)
	}
	return rec, true, nil
}

// LocalCacheExport exports build cache records to a directory (--cache-to type=local).
type LocalCacheExport struct{ Dir string }

// Export writes the records and their layers into the directory.
func (l LocalCacheExport) Export(ctx context.Context, s *Store, records []CacheRecord, c layer.Compression) error {
	return s.ExportCache(ctx, l.Dir, records, c)
}

// String names the destination in messages.
func (l LocalCacheExport) String() string { return l.Dir }

// String names the source in messages.
func (src *CacheSource) String() string { return src.dir }
