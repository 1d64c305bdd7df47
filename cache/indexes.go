package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// An image index (a multi-platform image) is kept as its OCI index blob and
// a record, indexes/<hex>.json, naming the image (config digest) of each of
// its manifests the store has. A reference may point at an index as at an
// image; the images of an index are images of the store like any other,
// kept (by GC and prune) as long as an index that is kept lists them.

// IndexImage is one manifest of an index that the store has, with its image.
type IndexImage struct {
	// Manifest is the index's descriptor of the manifest, with its platform.
	Manifest ocispec.Descriptor `json:"manifest"`
	Image    digest.Digest      `json:"image"`
}

type indexRecord struct {
	Images []IndexImage `json:"images"`
}

func (s *Store) indexPath(d digest.Digest) string {
	return s.path("indexes", d.Encoded()+".json")
}

// IsIndex reports whether d is an index the store has.
func (s *Store) IsIndex(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.indexPath(d))
	return err == nil
}

// PutIndex makes the index of the images given with their platforms and
// descriptor annotations (in that order; each image's manifest is made as
// Manifest makes it), annotated with annotations, stores it and returns its
// digest.
func (s *Store) PutIndex(ctx context.Context, images []IndexImage, annotations map[string]string) (digest.Digest, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	if len(annotations) > 0 {
		idx.Annotations = maps.Clone(annotations)
	}
	var recs []IndexImage
	for _, im := range images {
		desc, _, err := s.Manifest(ctx, im.Image)
		if err != nil {
			return "", fmt.Errorf("index: image %s: %w", im.Image, err)
		}
		desc.Platform = im.Manifest.Platform
		if len(im.Manifest.Annotations) > 0 {
			desc.Annotations = maps.Clone(im.Manifest.Annotations)
		}
		idx.Manifests = append(idx.Manifests, desc)
		recs = append(recs, IndexImage{Manifest: desc, Image: im.Image})
	}
	d, data, err := s.WriteJSON(ctx, idx)
	if err != nil {
		return "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(data))}
	return d, s.RecordIndex(desc, recs)
}

// RecordIndex records the index whose blob (desc) is in the store, with the
// images of the manifests the store has of it (pull, load).
func (s *Store) RecordIndex(desc ocispec.Descriptor, images []IndexImage) error {
	if !s.HasBlob(desc.Digest) {
		return fmt.Errorf("index %s: blob not in the store: %w", desc.Digest, ErrNotFound)
	}
	for _, im := range images {
		if !s.isImage(im.Image) {
			return fmt.Errorf("index %s: %w", desc.Digest, imageNotFound(im.Image))
		}
	}
	if err := os.MkdirAll(s.path("indexes"), 0o700); err != nil {
		return err
	}
	if old, err := s.indexRecord(desc.Digest); err == nil {
		// Platforms recorded before (an earlier pull of another platform) stay.
		for _, o := range old.Images {
			found := false
			for _, im := range images {
				found = found || im.Manifest.Digest == o.Manifest.Digest
			}
			if !found && s.isImage(o.Image) {
				images = append(images, o)
			}
		}
	}
	data, err := json.Marshal(indexRecord{Images: images})
	if err != nil {
		return err
	}
	if err := s.writeFileAtomic(s.indexPath(desc.Digest), data); err != nil {
		return err
	}
	imgs := make([]digest.Digest, 0, len(images))
	for _, im := range images {
		imgs = append(imgs, im.Image)
	}
	return s.hold(imgs, nil, []digest.Digest{desc.Digest})
}

func (s *Store) indexRecord(d digest.Digest) (indexRecord, error) {
	var rec indexRecord
	data, err := os.ReadFile(s.indexPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, imageNotFound(d)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("index record %s: %w", d, ErrInvalid)
	}
	return rec, nil
}

// Index returns the index d and the images of it the store has.
func (s *Store) Index(d digest.Digest) (ocispec.Index, []IndexImage, error) {
	rec, err := s.indexRecord(d)
	if err != nil {
		return ocispec.Index{}, nil, err
	}
	data, err := s.ReadBlob(d)
	if err != nil {
		return ocispec.Index{}, nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return ocispec.Index{}, nil, fmt.Errorf("index %s: %v: %w", d, err, ErrInvalid)
	}
	return idx, rec.Images, nil
}

// IndexIDs lists every index in the store.
func (s *Store) IndexIDs() ([]digest.Digest, error) {
	ents, err := os.ReadDir(s.path("indexes"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []digest.Digest
	for _, e := range ents {
		if hex, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if d := digest.NewDigestFromEncoded(digest.SHA256, hex); d.Validate() == nil {
				ids = append(ids, d)
			}
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// IndexedImages is every image some index of the store lists, with the
// number of indexes listing it.
func (s *Store) IndexedImages() (map[digest.Digest]int, error) {
	ids, err := s.IndexIDs()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]int{}
	for _, d := range ids {
		rec, err := s.indexRecord(d)
		if err != nil {
			continue
		}
		for _, im := range rec.Images {
			out[im.Image]++
		}
	}
	return out, nil
}

// ResolveTarget is Resolve for commands that act on what a name points at:
// an index stays an index (tag, rmi, push, save). isIndex tells which it is.
func (s *Store) ResolveTarget(nameOrID string) (d digest.Digest, isIndex bool, err error) {
	if d, err := digest.Parse(nameOrID); err == nil && s.IsIndex(d) {
		return d, true, nil
	}
	if refs, err := s.readRefs(); err == nil {
		if n, err := NormalizeName(nameOrID); err == nil && s.IsIndex(refs[n]) {
			return refs[n], true, nil
		}
	}
	if hex := strings.TrimPrefix(nameOrID, "sha256:"); len(hex) >= 4 && len(hex) < 64 && isHex(hex) {
		if _, err := s.resolveImage(nameOrID); errors.Is(err, ErrNotFound) {
			ids, _ := s.IndexIDs()
			var found []digest.Digest
			for _, id := range ids {
				if strings.HasPrefix(id.Encoded(), hex) {
					found = append(found, id)
				}
			}
			if len(found) == 1 {
				return found[0], true, nil
			}
		}
	}
	id, err := s.resolveImage(nameOrID)
	return id, false, err
}

// ResolvePlatform finds the image of platform p a user means: the name of
// an image (which must be of platform p) or of an index (its manifest for
// p), or an image or index ID.
func (s *Store) ResolvePlatform(nameOrID string, p ocispec.Platform) (digest.Digest, error) {
	d, isIndex, err := s.ResolveTarget(nameOrID)
	if err != nil {
		return "", err
	}
	if isIndex {
		return s.indexImage(nameOrID, d, p)
	}
	img, _, err := s.Image(d)
	if err != nil {
		return "", err
	}
	if img.OS != "" && !PlatformMatches(p, img.Platform) {
		return "", &platformNotFound{fmt.Sprintf("image %s is %s, not %s", nameOrID, FormatPlatform(img.Platform), FormatPlatform(p))}
	}
	return d, nil
}

// ErrPlatformNotFound is the error of an image or index asked for a
// platform it does not have; it is also an ErrNotFound.
var ErrPlatformNotFound = errors.New("platform not found")

type platformNotFound struct{ msg string }

func (e *platformNotFound) Error() string { return e.msg }

func (e *platformNotFound) Is(target error) bool {
	return target == ErrPlatformNotFound || target == ErrNotFound
}

// indexImage is the image of index d for platform p.
func (s *Store) indexImage(name string, d digest.Digest, p ocispec.Platform) (digest.Digest, error) {
	idx, have, err := s.Index(d)
	if err != nil {
		return "", err
	}
	for _, im := range have {
		if im.Manifest.Platform != nil && PlatformMatches(p, *im.Manifest.Platform) {
			return im.Image, nil
		}
	}
	var in, missing []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue // attestations
		}
		if PlatformMatches(p, *m.Platform) {
			missing = append(missing, FormatPlatform(*m.Platform))
		}
		in = append(in, FormatPlatform(*m.Platform))
	}
	if len(missing) > 0 {
		return "", &platformNotFound{fmt.Sprintf("image %s: platform %s was not pulled (kiln pull --platform %s %s)", name, FormatPlatform(p), FormatPlatform(p), name)}
	}
	return "", &platformNotFound{fmt.Sprintf("image %s has no manifest for platform %s (it has %s)", name, FormatPlatform(p), strings.Join(in, ", "))}
}

// DeleteIndex removes an index that no name points at any more. The images
// only it listed stay until they are removed too (rmi removes them).
func (s *Store) DeleteIndex(d digest.Digest) error {
	names, err := s.NamesOf(d)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("index %s is referenced by %s: %w", d, strings.Join(names, ", "), ErrExists)
	}
	if err := os.Remove(s.indexPath(d)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return imageNotFound(d)
		}
		return err
	}
	return nil
}
