package archive

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// planDocker plans the images of the archive's manifest.json that index.json
// did not already describe.
func (p *loadPlan) planDocker() error {
	data, err := p.ms.readSmall(dockerManifestFile)
	if err != nil {
		return err
	}
	var items []dockerManifestItem
	if err := json.Unmarshal(data, &items); err != nil {
		return fmt.Errorf("archive member %s: parse: %v: %w", dockerManifestFile, err, cache.ErrInvalid)
	}
	for i, it := range items {
		names, err := dockerNames(it.RepoTags)
		if err != nil {
			return fmt.Errorf("archive member %s: entry %d: %w", dockerManifestFile, i, err)
		}
		config, err := p.ms.readSmall(it.Config)
		if err != nil {
			return fmt.Errorf("archive member %s: entry %d: %w", dockerManifestFile, i, err)
		}
		id := digest.FromBytes(config)
		if want, ok := digestInName(it.Config, ".json"); ok && want != id {
			return fmt.Errorf("archive member %s: content has digest %s: %w", it.Config, id, cache.ErrInvalid)
		}
		if p.known(id, names) {
			continue
		}
		diffIDs, err := parseConfig(config, it.Config, len(it.Layers))
		if err != nil {
			return err
		}
		img := &loadImage{id: id, config: config, names: names}
		for j, lname := range it.Layers {
			mem, err := p.ms.lookup(lname)
			if err != nil {
				return fmt.Errorf("archive member %s: entry %d: %w", dockerManifestFile, i, err)
			}
			desc, err := p.dockerLayer(mem, diffIDs[j])
			if err != nil {
				return fmt.Errorf("archive member %s: %w", lname, err)
			}
			img.layers = append(img.layers, loadLayer{name: lname, member: mem, desc: desc, diffID: diffIDs[j]})
		}
		p.add(img)
	}
	return nil
}

// dockerLayer describes a layer file of a docker archive, which manifest.json
// lists by path alone: its compression is sniffed and its digest is the
// diffID when it is an uncompressed tar, is in its name when that is a blob
// path, and is computed otherwise. Ingesting it verifies that digest.
func (p *loadPlan) dockerLayer(m *member, diffID digest.Digest) (ocispec.Descriptor, error) {
	dr, c, err := layer.Decompress(p.ms.open(m))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	dr.Close()
	d := ocispec.Descriptor{MediaType: c.MediaType(), Size: m.size}
	if d.MediaType == "" {
		return ocispec.Descriptor{}, fmt.Errorf("%s-compressed layer: %w", c, cache.ErrInvalid)
	}
	if c == layer.Uncompressed {
		d.Digest = diffID
		return d, nil
	}
	if blob, ok := digestInName(m.name, ""); ok && strings.HasPrefix(m.name, "blobs/") {
		d.Digest = blob
		return d, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, p.ms.open(m)); err != nil {
		return ocispec.Descriptor{}, err
	}
	d.Digest = digest.NewDigest(digest.SHA256, h)
	return d, nil
}

// digestInName returns the sha256 digest a member is named after:
// blobs/sha256/<hex> or <hex><suffix>.
func digestInName(name, suffix string) (digest.Digest, bool) {
	name, _ = cleanName(name)
	hex, ok := strings.CutSuffix(path.Base(name), suffix)
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	return d, d.Validate() == nil
}
