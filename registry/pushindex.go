package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// pushIndex pushes every image of the index d (each manifest by its
// digest, as the index names it), then the index under ref. Every platform
// of the index must be in the store: a registry refuses an index whose
// manifests it lacks.
func pushIndex(ctx context.Context, s *cache.Store, d digest.Digest, ref name.Reference, f Format, opts Options) (Pushed, error) {
	if f != FormatKeep && f != FormatOCI {
		return Pushed{}, fmt.Errorf("--format %s: a multi-platform image is pushed as the OCI index it is: %w", f, cache.ErrInvalid)
	}
	idx, images, err := s.Index(d)
	if err != nil {
		return Pushed{}, err
	}
	have := map[digest.Digest]digest.Digest{}
	for _, im := range images {
		have[im.Manifest.Digest] = im.Image
	}
	var res Pushed
	for _, m := range idx.Manifests {
		id, ok := have[m.Digest]
		if !ok {
			p := "unknown platform"
			if m.Platform != nil {
				p = cache.FormatPlatform(*m.Platform)
			}
			return Pushed{}, fmt.Errorf("index %s: manifest %s (%s) is not in the store (pull the image with --all-platforms): %w", d, m.Digest, p, cache.ErrNotFound)
		}
		one, err := push(ctx, s, id, ref.Context().Digest(m.Digest.String()), FormatKeep, opts)
		if err != nil {
			return Pushed{}, err
		}
		if one.Manifest.Digest != m.Digest {
			return Pushed{}, fmt.Errorf("index %s: image %s pushed as manifest %s, the index names %s: %w", d, id, one.Manifest.Digest, m.Digest, cache.ErrInvalid)
		}
		res.Uploaded += one.Uploaded
		res.Existing += one.Existing
		res.Mounted += one.Mounted
	}
	raw, err := s.ReadBlob(d)
	if err != nil {
		return Pushed{}, err
	}
	mt := idx.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageIndex
	}
	ro := append(opts.remoteOptions(), remote.WithContext(ctx))
	if err := remote.Put(ref, rawManifest{raw: raw, mt: types.MediaType(mt)}, ro...); err != nil {
		return Pushed{}, describeErr(err)
	}
	res.Manifest = ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
	return res, nil
}

// rawManifest is a manifest (an index) put byte for byte.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
