package cache

import (
	"github.com/opencontainers/go-digest"
)

// Lowers is what a consumer mounts to see the layer chain (an image's
// rootfs.diff_ids, base first): the layers' snapshot directories, top-most
// first as overlayfs takes its lowerdirs, without empty layers and with only
// the top-most copy of a layer that appears twice (the merged tree is the
// same). The builder's RUN steps and mount sources, `kiln run` and `inspect`
// all mount or show this list, so the rule lives here once. No lowers
// (scratch, or only empty layers) means the consumer's upper directory is
// the whole tree: runner.OverlayMount then binds it instead of an overlay.
func (s *Store) Lowers(chain []digest.Digest) ([]string, error) {
	var dirs []string
	seen := map[digest.Digest]bool{}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		if seen[d] {
			continue
		}
		seen[d] = true
		l, err := s.Layer(d)
		if err != nil {
			return nil, err
		}
		if !l.EmptyLayer() {
			dirs = append(dirs, s.SnapshotDir(d))
		}
	}
	return dirs, nil
}
