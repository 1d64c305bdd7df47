package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
)

// Pulled is the outcome of a pull.
type Pulled struct {
	// ID is the image ID (its config digest).
	ID digest.Digest
	// Name is the name the image got in the store (normalized).
	Name string
	// Digest is the digest of what the name resolved to in the registry: the
	// index for a multi-platform image, else the image manifest.
	Digest digest.Digest
	// Manifest is the image manifest kept in the store.
	Manifest ocispec.Descriptor
	// Index, for a multi-platform image, is its index, which the name
	// points at in the store; Images are the images pulled from it.
	Index  *ocispec.Descriptor
	Images []cache.IndexImage
}

// Pull fetches an image from its registry into the store and names it. For a
// multi-platform index it takes the image of Options.Platform. Layers already
// in the store (with the same blob) are not fetched again; the others are
// fetched Options.Jobs at a time and stream into the blob store and their
// snapshots in one pass. Everything is verified before the image is recorded
// and named: on any error nothing is named.
func Pull(ctx context.Context, s *cache.Store, image string, opts Options) (Pulled, error) {
	n, ref, err := ParseReference(image, opts)
	if err != nil {
		return Pulled{}, err
	}
	res, err := pull(ctx, s, ref, opts)
	if err != nil {
		return Pulled{}, fmt.Errorf("pull %s: %w", cache.FamiliarName(n), err)
	}
	res.Name = n
	target := res.ID
	if res.Index != nil {
		target = res.Index.Digest
	}
	if err := s.Tag(n, target); err != nil {
		return Pulled{}, fmt.Errorf("pull %s: %w", cache.FamiliarName(n), err)
	}
	return res, nil
}

func pull(ctx context.Context, s *cache.Store, ref name.Reference, opts Options) (Pulled, error) {
	want, err := opts.platform()
	if err != nil {
		return Pulled{}, err
	}
	p, err := remote.NewPuller(opts.remoteOptions()...)
	if err != nil {
		return Pulled{}, err
	}
	top, err := p.Get(ctx, ref)
	if err != nil {
		return Pulled{}, describeErr(err)
	}
	raw, mdesc := top.Manifest, ocispec.Descriptor{MediaType: mediaTypeOf(top.Manifest, string(top.MediaType)), Digest: digest.Digest(top.Digest.String()), Size: int64(len(top.Manifest))}
	if digest.FromBytes(raw) != mdesc.Digest {
		return Pulled{}, fmt.Errorf("manifest %s: content does not match its digest: %w", mdesc.Digest, cache.ErrInvalid)
	}
	res := Pulled{Digest: mdesc.Digest}
	if !isIndex(mdesc.MediaType) {
		id, err := pullImage(ctx, s, p, ref, raw, mdesc, opts)
		res.ID, res.Manifest = id, mdesc
		return res, err
	}
	idx, err := parseIndex(raw, mdesc.Digest)
	if err != nil {
		return Pulled{}, err
	}
	children := []ocispec.Descriptor{}
	if opts.AllPlatforms {
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" && isImageManifest(m.MediaType) {
				children = append(children, m)
			}
		}
	}
	wanted, err := pickPlatform(idx, mdesc.Digest, want)
	if err != nil && !opts.AllPlatforms {
		return Pulled{}, err
	}
	if !opts.AllPlatforms {
		children = append(children, wanted)
	}
	for _, child := range children {
		craw, err := fetchManifest(ctx, p, ref.Context(), child)
		if err != nil {
			return Pulled{}, err
		}
		cdesc := ocispec.Descriptor{MediaType: mediaTypeOf(craw, child.MediaType), Digest: child.Digest, Size: child.Size}
		id, err := pullImage(ctx, s, p, ref, craw, cdesc, opts)
		if err != nil {
			return Pulled{}, err
		}
		res.Images = append(res.Images, cache.IndexImage{Manifest: child, Image: id})
		if child.Digest == wanted.Digest || res.ID == "" {
			res.ID, res.Manifest = id, cdesc
		}
	}
	// The index itself, as the registry serves it: the name points at it,
	// and push sends it (and the platforms pulled) back byte for byte.
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(raw), mdesc.Digest, mdesc.Size); err != nil {
		return Pulled{}, err
	}
	if err := s.RecordIndex(mdesc, res.Images); err != nil {
		return Pulled{}, err
	}
	res.Index = &mdesc
	return res, nil
}

// pullImage brings the image of the manifest raw (described by mdesc) into
// the store and returns its ID.
func pullImage(ctx context.Context, s *cache.Store, p *remote.Puller, ref name.Reference, raw []byte, mdesc ocispec.Descriptor, opts Options) (digest.Digest, error) {
	m, err := parseImageManifest(raw, mdesc.MediaType, mdesc.Digest)
	if err != nil {
		return "", err
	}
	config, err := fetchBlob(ctx, p, ref.Context(), m.Config)
	if err != nil {
		return "", err
	}
	img, err := parseConfig(config, m)
	if err != nil {
		return "", err
	}
	if err := pullLayers(ctx, s, p, ref.Context(), m.Layers, img.RootFS.DiffIDs, opts); err != nil {
		return "", err
	}
	// Every blob is verified and in the store: record the image as pulled.
	if _, _, err := s.WriteBlob(ctx, bytes.NewReader(raw), mdesc.Digest, mdesc.Size); err != nil {
		return "", err
	}
	id, err := s.PutImage(ctx, config, cache.ImageOptions{Manifest: &mdesc})
	if err != nil {
		return "", err
	}
	if id != m.Config.Digest {
		return "", fmt.Errorf("config %s: stored as %s: %w", m.Config.Digest, id, cache.ErrInvalid)
	}
	blobs := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	if err := newSources(s).record(ref.Context(), blobs); err != nil {
		return "", err
	}
	return id, nil
}

// fetchManifest fetches a manifest an index points at, by digest, and checks
// it against the index's descriptor.
func fetchManifest(ctx context.Context, p *remote.Puller, repo name.Repository, d ocispec.Descriptor) ([]byte, error) {
	got, err := p.Get(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, describeErr(err)
	}
	if int64(len(got.Manifest)) != d.Size || digest.FromBytes(got.Manifest) != d.Digest {
		return nil, fmt.Errorf("manifest %s: content does not match its descriptor: %w", d.Digest, cache.ErrInvalid)
	}
	return got.Manifest, nil
}

// fetchBlob reads a small blob (a config) whole, verified.
func fetchBlob(ctx context.Context, p *remote.Puller, repo name.Repository, d ocispec.Descriptor) ([]byte, error) {
	l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, describeErr(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, describeErr(err))
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil && int64(len(data)) <= d.Size {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, describeErr(err))
	}
	if int64(len(data)) != d.Size || digest.FromBytes(data) != d.Digest {
		return nil, fmt.Errorf("blob %s: content does not match its digest and size: %w", d.Digest, cache.ErrInvalid)
	}
	return data, nil
}

// pullLayers brings every layer into the store, Options.Jobs at a time.
func pullLayers(ctx context.Context, s *cache.Store, p *remote.Puller, repo name.Repository, layers []ocispec.Descriptor, diffIDs []digest.Digest, opts Options) error {
	pr := newProgress(opts)
	defer pr.close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.jobs())
	seen := map[digest.Digest]bool{}
	for i, desc := range layers {
		if seen[desc.Digest] {
			continue // a layer repeated in one image comes once
		}
		seen[desc.Digest] = true
		diffID := diffIDs[i]
		if _, err := s.Layer(diffID); err == nil && s.HasBlob(desc.Digest) {
			pr.layer(desc.Digest, desc.Size, "already exists")
			continue
		}
		b := pr.layer(desc.Digest, desc.Size, "waiting")
		g.Go(func() error {
			if err := pullLayer(gctx, s, p, repo, desc, diffID, b); err != nil {
				b.set("failed")
				return err
			}
			b.set("done")
			return nil
		})
	}
	return g.Wait()
}

func pullLayer(ctx context.Context, s *cache.Store, p *remote.Puller, repo name.Repository, desc ocispec.Descriptor, diffID digest.Digest, b *bar) error {
	l, err := p.Layer(ctx, repo.Digest(desc.Digest.String()))
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, describeErr(err))
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, describeErr(err))
	}
	defer rc.Close()
	b.set("downloading")
	// The store verifies digest, size and diffID as the blob streams in,
	// before go-containerregistry's own check at the end of the stream.
	if _, err := s.IngestLayerBlob(ctx, b.reader(newBlobReader(rc, desc)), desc, diffID); err != nil {
		return describeErr(err)
	}
	return nil
}

// describeErr turns the registry's answers into kiln's sentinel errors where
// one fits, keeping the registry's message.
func describeErr(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch {
	case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %w", err, ErrUnauthorized)
	case te.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", err, cache.ErrNotFound)
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return fmt.Errorf("%w: %w", err, ErrUnauthorized)
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return fmt.Errorf("%w: %w", err, cache.ErrNotFound)
		}
	}
	return err
}

// blobReader reads a layer blob from a registry. go-containerregistry
// verifies the blob at the end of the stream, with an error of its own making;
// blobReader hashes what it reads too so that a blob whose content is wrong
// (not a dropped connection) yields an error wrapping cache.ErrInvalid, and
// stops a blob larger than its descriptor says as soon as it is.
type blobReader struct {
	r    io.Reader
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
}

func newBlobReader(r io.Reader, desc ocispec.Descriptor) *blobReader {
	return &blobReader{r: r, desc: desc, h: sha256.New()}
}

func (br *blobReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	br.h.Write(p[:n])
	br.n += int64(n)
	if br.n > br.desc.Size {
		return n, fmt.Errorf("blob %s: larger than its %d bytes: %w", br.desc.Digest, br.desc.Size, cache.ErrInvalid)
	}
	if err != nil && err != io.EOF && !isNetworkErr(err) {
		if got := digest.NewDigest(digest.SHA256, br.h); got != br.desc.Digest {
			return n, fmt.Errorf("blob %s: %d bytes with digest %s: %w", br.desc.Digest, br.n, got, cache.ErrInvalid)
		}
	}
	return n, err
}

func isNetworkErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
