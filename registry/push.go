package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// Pushed is the outcome of a push.
type Pushed struct {
	// Name is the destination, normalized.
	Name string
	// Manifest describes the manifest pushed (its digest is what the
	// registry now serves under Name).
	Manifest ocispec.Descriptor
	// Uploaded, Existing and Mounted count the image's blobs (config
	// included) by what the push did with them.
	Uploaded, Existing, Mounted int
}

// Push uploads an image of the store to a registry under dest (the image's
// own name when dest is empty). Format chooses the manifest format; the
// default keeps the one the image has (the manifest it was pulled or loaded
// with, byte for byte, or OCI for an image kiln built). Blobs the registry
// already has are not uploaded; blobs known to be in another repository of
// the same registry are mounted from there.
//
// A multi-platform image (an index) is pushed whole: each of its images,
// then the index; with Options.Platform, only the image of that platform.
func Push(ctx context.Context, s *cache.Store, image, dest string, f Format, opts Options) (Pushed, error) {
	id, isIndex, err := s.ResolveTarget(image)
	if err == nil && isIndex && opts.Platform != "" {
		var p ocispec.Platform
		if p, err = cache.ParsePlatform(opts.Platform); err == nil {
			id, err = s.ResolvePlatform(image, p)
			isIndex = false
		}
	}
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", image, err)
	}
	if dest == "" {
		n, err := cache.NormalizeName(image)
		refs, rerr := s.References()
		if rerr != nil {
			return Pushed{}, fmt.Errorf("push %s: %w", image, rerr)
		}
		if err != nil || refs[n] != id {
			return Pushed{}, fmt.Errorf("push %s: an image ID needs a destination name: %w", image, cache.ErrInvalid)
		}
		dest = image
	}
	n, ref, err := ParseReference(dest, opts)
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", dest, err)
	}
	if _, ok := ref.(name.Digest); ok {
		return Pushed{}, fmt.Errorf("push %s: cannot push to a digest, give a tag: %w", dest, cache.ErrInvalid)
	}
	var res Pushed
	if isIndex {
		res, err = pushIndex(ctx, s, id, ref, f, opts)
	} else {
		res, err = push(ctx, s, id, ref, f, opts)
	}
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", cache.FamiliarName(n), err)
	}
	res.Name = n
	return res, nil
}

func push(ctx context.Context, s *cache.Store, id digest.Digest, ref name.Reference, f Format, opts Options) (Pushed, error) {
	mdesc, m, err := s.Manifest(ctx, id)
	if err != nil {
		return Pushed{}, err
	}
	raw, err := s.ReadBlob(mdesc.Digest)
	if err != nil {
		return Pushed{}, err
	}
	mt := mediaTypeOf(raw, mdesc.MediaType)
	if raw, mt, err = convertManifest(raw, m, mt, f); err != nil {
		return Pushed{}, err
	}
	img, config, err := s.Image(id)
	if err != nil {
		return Pushed{}, err
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return Pushed{}, fmt.Errorf("manifest %s has %d layers, config %d diff_ids: %w", mdesc.Digest, len(m.Layers), len(img.RootFS.DiffIDs), cache.ErrInvalid)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Pushed{}, err
	}
	repo := ref.Context()
	known := newSources(s).lookup()
	mounts := map[digest.Digest]name.Repository{}
	for _, l := range m.Layers {
		if src, ok := mountSource(known[l.Digest], repo, opts); ok {
			mounts[l.Digest] = src
		}
	}
	pr := newProgress(opts)
	var mu sync.Mutex
	bars := map[digest.Digest]*bar{}
	im := &storeImage{
		s: s, manifest: raw, mt: types.MediaType(mt), m: m, config: config, diffIDs: img.RootFS.DiffIDs, mounts: mounts,
		opened: func(desc ocispec.Descriptor, r io.Reader) io.Reader {
			b := pr.layer(desc.Digest, desc.Size, "uploading")
			mu.Lock()
			bars[desc.Digest] = b
			mu.Unlock()
			return b.reader(r)
		},
	}
	obs := &observer{inner: opts.transport(), blobs: map[digest.Digest]string{}}
	ro := append(opts.remoteOptions(), remote.WithTransport(obs), remote.WithContext(ctx))
	err = remote.Write(ref, im, ro...)
	for d, b := range bars {
		if err == nil && obs.outcome(d) == "uploaded" {
			b.set("pushed")
		} else if err != nil {
			b.set("failed")
		}
	}
	pr.close()
	if err != nil {
		return Pushed{}, describeErr(err)
	}
	res := Pushed{Manifest: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))}}
	blobs := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, b := range blobs {
		switch obs.outcome(b) {
		case "mounted":
			res.Mounted++
		case "uploaded":
			res.Uploaded++
		default:
			res.Existing++
		}
	}
	for _, l := range m.Layers {
		switch obs.outcome(l.Digest) {
		case "mounted":
			fmt.Fprintf(pr.w, "%s: mounted from %s\n", shortID(l.Digest), mounts[l.Digest].RepositoryStr())
		case "uploaded":
		default:
			fmt.Fprintf(pr.w, "%s: already exists\n", shortID(l.Digest))
		}
	}
	if err := newSources(s).record(repo, blobs); err != nil {
		return Pushed{}, err
	}
	return res, nil
}

// observer watches the requests of a push (under authentication) to learn
// which blobs were uploaded and which mounted; the others the registry had
// (go-containerregistry checks with HEAD, or skips the whole image when the
// manifest is there already).
type observer struct {
	inner http.RoundTripper
	mu    sync.Mutex
	blobs map[digest.Digest]string
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var d digest.Digest
	var what string
	switch {
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("digest") != "":
		d, what = digest.Digest(req.URL.Query().Get("digest")), "uploaded"
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("mount") != "":
		d, what = digest.Digest(req.URL.Query().Get("mount")), "mounted"
	}
	if what != "" && d.Validate() == nil {
		o.mu.Lock()
		o.blobs[d] = what
		o.mu.Unlock()
	}
	return resp, nil
}

func (o *observer) outcome(d digest.Digest) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.blobs[d]
}
