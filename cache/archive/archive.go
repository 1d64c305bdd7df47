// Package archive writes and reads image archives, the tars of kiln save and
// kiln load: OCI image layouts (oci-layout, index.json, blobs/sha256/...) and
// the docker-archive format of docker save/load (manifest.json, repositories).
//
// Saving streams every blob straight from the store into the tar, once per
// archive however many images share it, with deterministic headers so the same
// images always give the same bytes. Loading verifies every manifest, config
// and layer against its digest, and each layer's uncompressed content against
// the config's diff_ids, before any image is recorded or tagged.
package archive

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// Format is the layout of a saved archive.
type Format string

const (
	// FormatOCI is an OCI image layout in a tar.
	FormatOCI Format = "oci"
	// FormatDocker is the docker-archive format that docker load reads. It is
	// also a valid OCI image layout, as docker 25 and later write it.
	FormatDocker Format = "docker"
)

// ParseFormat parses a user-facing format name ("oci" or "docker").
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatOCI, FormatDocker:
		return f, nil
	}
	return "", fmt.Errorf("archive format %q (want oci or docker): %w", s, cache.ErrInvalid)
}

// Loaded is an image stored by Load.
type Loaded struct {
	// ID is the image ID: the digest of its config.
	ID digest.Digest
	// Names are the normalized names ("docker.io/library/bb:latest") the
	// archive gave the image and that now point at it; empty if none.
	Names []string
}

// annotationImageName, on an OCI index's manifest descriptor, holds the
// image's full normalized name (containerd and docker write it besides
// ocispec.AnnotationRefName, where they put the tag alone).
const annotationImageName = "io.containerd.image.name"

// Docker's media types for manifests and manifest lists.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Member names shared by both formats.
const (
	dockerManifestFile = "manifest.json"
	repositoriesFile   = "repositories"
)

// dockerManifestItem is one entry of a docker-archive's manifest.json.
type dockerManifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
	// Parent is written by docker for images with a local parent; kiln
	// neither writes nor needs it.
	Parent string `json:",omitempty"`
	// LayerSources describes foreign layers absent from the archive.
	LayerSources map[digest.Digest]json.RawMessage `json:",omitempty"`
}

// blobPath is the member holding a blob in an OCI layout.
func blobPath(d digest.Digest) string {
	return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded()
}
