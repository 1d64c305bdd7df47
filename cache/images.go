package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/layer"
)

// ImageOptions are what PutImage records beside the config.
type ImageOptions struct {
	// Compression is used for the layers the image adds (its top OwnLayers)
	// when they are first exported. The layers it shares with its base keep
	// the blobs they have (gzip when they have none yet): base layers are
	// never rewritten.
	Compression layer.Compression
	OwnLayers   int
	// Manifest, when not nil, is the manifest the image came with (already
	// in the blob store).
	Manifest *ocispec.Descriptor
}

// imageRecord is what the store keeps of an image besides its config blob.
type imageRecord struct {
	Compression layer.Compression `json:"compression,omitempty"`
	OwnLayers   int               `json:"ownLayers,omitempty"`
	// Manifest is the image's manifest once it exists (loaded, pulled, or
	// materialized for save and push).
	Manifest *ocispec.Descriptor `json:"manifest,omitempty"`
	// RepoDigests are the "repository@sha256:…" names registries serve
	// the image under, recorded by pull and push (see AddRepoDigest).
	RepoDigests []string `json:"repoDigests,omitempty"`
}

// PutImage stores an image config (raw JSON, kept byte for byte: its digest is
// the image ID). Every layer it lists must be in the store; those still
// unsynced (Layer.Unsynced) are synced first.
func (s *Store) PutImage(ctx context.Context, config []byte, opts ImageOptions) (digest.Digest, error) {
	var img ocispec.Image
	if err := json.Unmarshal(config, &img); err != nil {
		return "", fmt.Errorf("image config: %v: %w", err, ErrInvalid)
	}
	var unsynced []Layer
	for _, d := range img.RootFS.DiffIDs {
		l, err := s.Layer(d)
		if err != nil {
			return "", fmt.Errorf("image config: layer %s: %w", d, err)
		}
		if l.Unsynced != "" {
			unsynced = append(unsynced, l)
		}
	}
	// The record is durable: the layers it names must be (whichever
	// process committed them).
	var f *os.File
	if s.deferred != nil {
		f = s.deferred.f
	}
	if err := s.syncLayers(f, unsynced); err != nil {
		return "", err
	}
	id, _, err := s.WriteBlob(ctx, bytes.NewReader(config), "", int64(len(config)))
	if err != nil {
		return "", err
	}
	rec, err := s.imageRecord(id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", err
	}
	if opts.Compression != "" {
		if rec.Compression != opts.Compression || rec.OwnLayers != opts.OwnLayers {
			rec.Manifest = nil // made for another compression: make it again when needed
		}
		rec.Compression = opts.Compression
		rec.OwnLayers = opts.OwnLayers
	}
	if opts.Manifest != nil {
		rec.Manifest = opts.Manifest
	}
	if err := s.writeImageRecord(id, rec); err != nil {
		return "", err
	}
	return id, s.hold([]digest.Digest{id}, nil, nil)
}

// imagePath is the file of the image's record.
func (s *Store) imagePath(id digest.Digest) string {
	return s.path("images", id.Encoded()+".json")
}

func (s *Store) imageRecord(id digest.Digest) (imageRecord, error) {
	var rec imageRecord
	data, err := os.ReadFile(s.imagePath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, imageNotFound(id)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("image record %s: %w", id, ErrInvalid)
	}
	return rec, nil
}

func (s *Store) writeImageRecord(id digest.Digest, rec imageRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.imagePath(id), data)
}

func (s *Store) isImage(id digest.Digest) bool {
	if id.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.imagePath(id))
	return err == nil
}

// ImageIDs lists every image in the store.
func (s *Store) ImageIDs() ([]digest.Digest, error) {
	ents, err := os.ReadDir(s.path("images"))
	if err != nil {
		return nil, err
	}
	var ids []digest.Digest
	for _, e := range ents {
		if hex, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			d := digest.NewDigestFromEncoded(digest.SHA256, hex)
			if d.Validate() == nil {
				ids = append(ids, d)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Image returns the image's parsed config and its raw bytes.
func (s *Store) Image(id digest.Digest) (ocispec.Image, []byte, error) {
	if !s.isImage(id) {
		return ocispec.Image{}, nil, imageNotFound(id)
	}
	data, err := s.ReadBlob(id)
	if err != nil {
		return ocispec.Image{}, nil, err
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return ocispec.Image{}, nil, fmt.Errorf("image %s: config: %v: %w", id, err, ErrInvalid)
	}
	return img, data, nil
}

// Manifest returns the image's manifest, making it the first time it is
// needed: layers that have a blob keep it (base layers are never rewritten),
// the others are compressed now with the image's compression.
func (s *Store) Manifest(ctx context.Context, id digest.Digest) (ocispec.Descriptor, ocispec.Manifest, error) {
	rec, err := s.imageRecord(id)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	if rec.Manifest != nil && s.HasBlob(rec.Manifest.Digest) {
		data, err := s.ReadBlob(rec.Manifest.Digest)
		if err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, fmt.Errorf("manifest %s: %w", rec.Manifest.Digest, ErrInvalid)
		}
		return *rec.Manifest, m, nil
	}
	img, config, err := s.Image(id)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	c := rec.Compression
	if c == "" {
		c = layer.Gzip
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	own := len(img.RootFS.DiffIDs) - rec.OwnLayers
	for i, d := range img.RootFS.DiffIDs {
		var desc ocispec.Descriptor
		if i >= own {
			desc, err = s.LayerBlob(ctx, d, c)
		} else {
			desc, err = s.layerBlobPreferExisting(ctx, d, layer.Gzip)
		}
		if err != nil {
			return ocispec.Descriptor{}, ocispec.Manifest{}, err
		}
		m.Layers = append(m.Layers, desc)
	}
	md, data, err := s.WriteJSON(ctx, m)
	if err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	desc := ocispec.Descriptor{MediaType: m.MediaType, Digest: md, Size: int64(len(data))}
	rec.Manifest = &desc
	if err := s.writeImageRecord(id, rec); err != nil {
		return ocispec.Descriptor{}, ocispec.Manifest{}, err
	}
	return desc, m, nil
}

func (s *Store) layerBlobPreferExisting(ctx context.Context, diffID digest.Digest, c layer.Compression) (ocispec.Descriptor, error) {
	l, err := s.Layer(diffID)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if b, ok := s.anyBlob(l); ok {
		return b, nil
	}
	return s.LayerBlob(ctx, diffID, c)
}

// DeleteImage removes an image that no name points at any more. Its content
// goes with the next garbage collection.
func (s *Store) DeleteImage(id digest.Digest) error {
	names, err := s.NamesOf(id)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("image %s is referenced by %s: %w", id, strings.Join(names, ", "), ErrExists)
	}
	if err := os.Remove(s.imagePath(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return imageNotFound(id)
		}
		return err
	}
	return nil
}
