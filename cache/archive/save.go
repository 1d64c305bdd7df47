package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// Save writes the images named by images (each a name[:tag], a repository
// meaning all its tags, or an image ID) to w as one tar in format f.
//
// FormatOCI writes an OCI image layout: oci-layout, index.json with one
// manifest descriptor per saved name (annotated with the tag as
// org.opencontainers.image.ref.name and the full name as
// io.containerd.image.name; an image saved by ID gets one unannotated
// descriptor) and blobs/sha256/*. FormatDocker writes the same plus docker's
// manifest.json and repositories, with zstd layers decompressed since docker
// load does not read them (their manifest is rewritten to match).
//
// Blobs are streamed from the store, re-verified on the way, each once; the
// entries come in a fixed order with fixed headers, so saving the same images
// twice gives the same bytes.
func Save(ctx context.Context, s *cache.Store, w io.Writer, images []string, f Format) error {
	if _, err := ParseFormat(string(f)); err != nil {
		return err
	}
	if len(images) == 0 {
		return fmt.Errorf("save: no image given: %w", cache.ErrInvalid)
	}
	targets, err := resolveTargets(s, images)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return saveTargets(ctx, s, w, targets, f, SaveOptions{})
}

// saveTargets plans and writes the archive of targets.
func saveTargets(ctx context.Context, s *cache.Store, w io.Writer, targets []*saveTarget, f Format, o SaveOptions) error {
	p, err := planSave(ctx, s, targets, f)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	p.opts = o
	if err := p.write(ctx, s, w); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// savePlan is everything to write, decided before the first byte goes out.
type savePlan struct {
	format Format
	images []savedImage
	blobs  []saveBlob // in archive order, each digest once
	seen   map[digest.Digest]bool
	opts   SaveOptions
	// indexes are the multi-platform images saved (saveindex.go).
	indexes []savedIndex
}

// savedImage is one image of the archive.
type savedImage struct {
	saveTarget
	manifest ocispec.Descriptor // as written to the archive
	platform *ocispec.Platform
	layers   []ocispec.Descriptor // as written to the archive
	diffIDs  []digest.Digest
	// inIndex marks an image saved as one of an index's (saveindex.go).
	inIndex bool
}

// saveBlob is one blob to write, from one of three sources.
type saveBlob struct {
	desc ocispec.Descriptor // what the archive holds
	// data, when not nil, is the blob itself (a rewritten manifest).
	data []byte
	// decompress, when not empty, is a store blob whose decompressed content
	// is desc (a zstd layer written uncompressed). Otherwise the store blob
	// desc.Digest is copied.
	decompress digest.Digest
}

// source is the store blob b is made from; "" when b is in memory.
func (b saveBlob) source() digest.Digest {
	switch {
	case b.data != nil:
		return ""
	case b.decompress != "":
		return b.decompress
	}
	return b.desc.Digest
}

func planSave(ctx context.Context, s *cache.Store, targets []*saveTarget, f Format) (*savePlan, error) {
	p := &savePlan{format: f, seen: map[digest.Digest]bool{}}
	for _, t := range targets {
		if t.index {
			if err := p.planIndex(ctx, s, t); err != nil { // saveindex.go
				return nil, err
			}
			continue
		}
		if err := p.planImage(ctx, s, t); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planImage adds the image t to the plan.
func (p *savePlan) planImage(ctx context.Context, s *cache.Store, t *saveTarget) error {
	f := p.format
	md, m, err := s.Manifest(ctx, t.id)
	if err != nil {
		return fmt.Errorf("image %s: %w", t.id, err)
	}
	img, _, err := s.Image(t.id)
	if err != nil {
		return err
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("image %s: manifest %s has %d layers, config %d: %w", t.id, md.Digest, len(m.Layers), len(img.RootFS.DiffIDs), cache.ErrInvalid)
	}
	si := savedImage{saveTarget: *t, manifest: md, layers: m.Layers, diffIDs: img.RootFS.DiffIDs}
	if img.OS != "" && img.Architecture != "" {
		si.platform = &ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant, OSVersion: img.OSVersion}
	}
	manifest := saveBlob{desc: md}
	if f == FormatDocker {
		if manifest, err = uncompressZstd(s, &si, m, manifest); err != nil {
			return fmt.Errorf("image %s: %w", t.id, err)
		}
	}
	blobs := []saveBlob{manifest, {desc: m.Config}}
	for i, l := range si.layers {
		b := saveBlob{desc: l}
		if l.Digest != m.Layers[i].Digest {
			b.decompress = m.Layers[i].Digest
		}
		blobs = append(blobs, b)
	}
	for _, b := range blobs {
		// Fail before the first byte is written rather than halfway.
		if src := b.source(); src != "" && !s.HasBlob(src) {
			return fmt.Errorf("image %s: blob %s: %w", t.id, src, cache.ErrNotFound)
		}
		p.add(b)
	}
	p.images = append(p.images, si)
	return nil
}

// uncompressZstd replaces, for docker load, the image's zstd layers by their
// uncompressed tars, and its manifest by one listing those. It returns the
// manifest blob to write: the rewritten one, or manifest unchanged.
func uncompressZstd(s *cache.Store, si *savedImage, m ocispec.Manifest, manifest saveBlob) (saveBlob, error) {
	var layers []ocispec.Descriptor
	for i, l := range m.Layers {
		c, err := layer.CompressionFromMediaType(l.MediaType)
		if err != nil {
			return saveBlob{}, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if c != layer.Zstd {
			layers = append(layers, l)
			continue
		}
		rec, err := s.Layer(si.diffIDs[i])
		if err != nil {
			return saveBlob{}, err
		}
		layers = append(layers, ocispec.Descriptor{MediaType: layer.Uncompressed.MediaType(), Digest: rec.DiffID, Size: rec.Size})
	}
	if equalDigests(layers, m.Layers) {
		return manifest, nil
	}
	m.Layers = layers
	data, err := json.Marshal(m)
	if err != nil {
		return saveBlob{}, err
	}
	si.layers = layers
	si.manifest = ocispec.Descriptor{MediaType: si.manifest.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return saveBlob{desc: si.manifest, data: data}, nil
}

func equalDigests(a, b []ocispec.Descriptor) bool {
	for i := range a {
		if a[i].Digest != b[i].Digest {
			return false
		}
	}
	return len(a) == len(b)
}

func (p *savePlan) add(b saveBlob) {
	if !p.seen[b.desc.Digest] {
		p.seen[b.desc.Digest] = true
		p.blobs = append(p.blobs, b)
	}
}

// index is the archive's index.json.
func (p *savePlan) index() ocispec.Index {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, img := range p.images {
		if img.inIndex {
			continue // in the archive through its index
		}
		d := ocispec.Descriptor{MediaType: img.manifest.MediaType, Digest: img.manifest.Digest, Size: img.manifest.Size, Platform: img.platform}
		if len(img.names) == 0 {
			d.Annotations = copyAnnotations(p.opts.DescriptorAnnotations, nil)
			idx.Manifests = append(idx.Manifests, d)
		}
		for _, n := range img.names {
			_, tag, _ := repoAndTag(n)
			d.Annotations = copyAnnotations(p.opts.DescriptorAnnotations, map[string]string{annotationImageName: n, ocispec.AnnotationRefName: tag})
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	idx.Annotations = copyAnnotations(p.opts.IndexAnnotations, nil)
	idx.Manifests = append(idx.Manifests, p.indexEntries()...)
	return idx
}

// dockerManifest is the archive's manifest.json and repositories.
func (p *savePlan) dockerManifest() ([]dockerManifestItem, map[string]map[string]string) {
	var items []dockerManifestItem
	repos := map[string]map[string]string{}
	for _, img := range p.images {
		it := dockerManifestItem{Config: blobPath(img.id), Layers: []string{}}
		for _, l := range img.layers {
			it.Layers = append(it.Layers, blobPath(l.Digest))
		}
		for _, n := range img.names {
			repo, tag, _ := repoAndTag(n)
			it.RepoTags = append(it.RepoTags, repo+":"+tag)
			if len(img.diffIDs) > 0 {
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				// As docker writes it: the top layer's ID, its diffID.
				repos[repo][tag] = img.diffIDs[len(img.diffIDs)-1].Encoded()
			}
		}
		items = append(items, it)
	}
	return items, repos
}

// epoch is every entry's modification time.
var epoch = time.Unix(0, 0)

func (p *savePlan) write(ctx context.Context, s *cache.Store, w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
	}
	files := []jsonFile{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{ocispec.ImageIndexFile, p.index()},
	}
	if p.format == FormatDocker {
		items, repos := p.dockerManifest()
		files = append(files, jsonFile{dockerManifestFile, items})
		if len(repos) > 0 {
			files = append(files, jsonFile{repositoriesFile, repos})
		}
	}
	for _, f := range files {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(tw, f.name, data); err != nil {
			return err
		}
	}
	for _, b := range p.blobs {
		if err := b.write(ctx, s, tw); err != nil {
			return err
		}
	}
	return tw.Close()
}

// jsonFile is a metadata member of the archive.
type jsonFile struct {
	name string
	v    any
}

func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch, Format: tar.FormatUSTAR}
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(fileHeader(name, int64(len(data)))); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// write streams the blob into the tar, verifying its size and digest.
func (b saveBlob) write(ctx context.Context, s *cache.Store, tw *tar.Writer) error {
	name := blobPath(b.desc.Digest)
	if b.data != nil {
		return writeFile(tw, name, b.data)
	}
	src := b.source()
	f, err := s.OpenBlob(src)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if b.decompress != "" {
		dr, _, err := layer.Decompress(f)
		if err != nil {
			return fmt.Errorf("blob %s: %w", src, err)
		}
		defer dr.Close()
		r = dr
	} else if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Size() != b.desc.Size {
		return fmt.Errorf("store blob %s: %d bytes, manifest says %d: %w", src, fi.Size(), b.desc.Size, cache.ErrInvalid)
	}
	if err := tw.WriteHeader(fileHeader(name, b.desc.Size)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	h := b.desc.Digest.Algorithm().Hash()
	_, err = io.CopyN(io.MultiWriter(tw, h), ctxReader{ctx, r}, b.desc.Size)
	if err == io.EOF || err == nil && !atEOF(r) {
		return fmt.Errorf("blob %s: content is not the %d bytes expected: %w", b.desc.Digest, b.desc.Size, cache.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if got := digest.NewDigest(b.desc.Digest.Algorithm(), h); got != b.desc.Digest {
		return fmt.Errorf("blob %s: content has digest %s: %w", b.desc.Digest, got, cache.ErrInvalid)
	}
	return nil
}

func atEOF(r io.Reader) bool {
	var one [1]byte
	n, _ := io.ReadFull(r, one[:])
	return n == 0
}
