package registry

import (
	"bytes"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// storeImage is an image of the store seen as a go-containerregistry
// v1.Image, for remote.Write: the manifest and config are small and held in
// memory, layer blobs stream from the store's files.
type storeImage struct {
	s        *cache.Store
	manifest []byte
	mt       types.MediaType
	m        ocispec.Manifest
	config   []byte
	diffIDs  []digest.Digest
	// mounts names, per blob, another repository of the destination
	// registry that has it.
	mounts map[digest.Digest]name.Repository
	// opened is called when a layer's blob is opened for upload.
	opened func(desc ocispec.Descriptor, r io.Reader) io.Reader
}

var _ v1.Image = (*storeImage)(nil)

func (im *storeImage) Layers() ([]v1.Layer, error) {
	ls := make([]v1.Layer, len(im.m.Layers))
	for i := range im.m.Layers {
		ls[i] = im.layer(i)
	}
	return ls, nil
}

func (im *storeImage) layer(i int) v1.Layer {
	l := &storeLayer{im: im, desc: im.m.Layers[i], diffID: im.diffIDs[i]}
	if src, ok := im.mounts[l.desc.Digest]; ok {
		return &remote.MountableLayer{Layer: l, Reference: src.Digest(l.desc.Digest.String())}
	}
	return l
}

func (im *storeImage) MediaType() (types.MediaType, error) { return im.mt, nil }
func (im *storeImage) Size() (int64, error)                { return int64(len(im.manifest)), nil }
func (im *storeImage) ConfigName() (v1.Hash, error)        { return v1.NewHash(im.m.Config.Digest.String()) }
func (im *storeImage) RawConfigFile() ([]byte, error)      { return im.config, nil }
func (im *storeImage) RawManifest() ([]byte, error)        { return im.manifest, nil }

func (im *storeImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(im.config))
}

func (im *storeImage) Digest() (v1.Hash, error) {
	return v1.NewHash(digest.FromBytes(im.manifest).String())
}

func (im *storeImage) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(im.manifest))
}

func (im *storeImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for i, l := range im.m.Layers {
		if l.Digest.String() == h.String() {
			return im.layer(i), nil
		}
	}
	return nil, fmt.Errorf("layer with digest %s: %w", h, cache.ErrNotFound)
}

func (im *storeImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for i, d := range im.diffIDs {
		if d.String() == h.String() {
			return im.layer(i), nil
		}
	}
	return nil, fmt.Errorf("layer with diffID %s: %w", h, cache.ErrNotFound)
}

// storeLayer is a layer blob of the store as a v1.Layer.
type storeLayer struct {
	im     *storeImage
	desc   ocispec.Descriptor
	diffID digest.Digest
}

var _ v1.Layer = (*storeLayer)(nil)

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }
func (l *storeLayer) DiffID() (v1.Hash, error) { return v1.NewHash(l.diffID.String()) }
func (l *storeLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

// Compressed streams the blob from the store's file.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.im.s.OpenBlob(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	if l.im.opened == nil {
		return f, nil
	}
	return readCloser{l.im.opened(l.desc, f), f}, nil
}

// Uncompressed streams the layer's tar, decompressed from the blob.
func (l *storeLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.im.s.OpenBlob(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	rc, _, err := layer.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	return readCloser{rc, closers{rc, f}}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
