package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// indexEntries are the store's indexes (multi-platform images) as images
// list them: with the newest creation time and the total size of their
// images; listed are the images they list, which images shows only
// through them.
func indexEntries(s *cache.Store) (out []*imageEntry, listed map[digest.Digest]bool, err error) {
	listed = map[digest.Digest]bool{}
	idxs, err := s.IndexIDs()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range idxs {
		_, images, err := s.Index(d)
		if err != nil {
			return nil, nil, err
		}
		e := &imageEntry{id: d}
		for _, im := range images {
			listed[im.Image] = true
			img, _, err := s.Image(im.Image)
			if err != nil {
				return nil, nil, err
			}
			if img.Created != nil && img.Created.After(e.created) {
				e.created = *img.Created
			}
			n, err := imageSize(s, img.RootFS.DiffIDs)
			if err != nil {
				return nil, nil, err
			}
			e.size += n
		}
		names, err := s.NamesOf(d)
		if err != nil {
			return nil, nil, err
		}
		// An index has no image record: its digest references are its
		// repository digests.
		for _, n := range names {
			if strings.Contains(n, "@") {
				e.repoDigests = append(e.repoDigests, n)
			} else {
				e.tags = append(e.tags, n)
			}
		}
		out = append(out, e)
	}
	return out, listed, nil
}

// printImageTree is images --tree (docker 28's): each image, and under an
// index each platform it has with its image ID and size.
func printImageTree(out io.Writer, s *cache.Store, noTrunc bool) error {
	imgs, err := imageEntries(s)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tID\tDISK USAGE\tCREATED")
	for _, r := range imageRows(imgs, noTrunc, false) {
		name := r.Repository + ":" + r.Tag
		if r.Repository == "<none>" {
			name = "<untagged>"
		}
		e := r.img
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, r.ID, r.Size, r.CreatedSince)
		if !s.IsIndex(e.id) {
			continue
		}
		idx, images, err := s.Index(e.id)
		if err != nil {
			return err
		}
		have := map[digest.Digest]digest.Digest{}
		for _, im := range images {
			have[im.Manifest.Digest] = im.Image
		}
		for i, m := range idx.Manifests {
			if m.Platform == nil {
				continue
			}
			branch := "├─"
			if i == len(idx.Manifests)-1 {
				branch = "└─"
			}
			id, ok := have[m.Digest]
			if !ok {
				fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", branch, cache.FormatPlatform(*m.Platform), shortID(m.Digest, noTrunc), "(not pulled)", "")
				continue
			}
			img, _, err := s.Image(id)
			if err != nil {
				return err
			}
			size, err := imageSize(s, img.RootFS.DiffIDs)
			if err != nil {
				return err
			}
			var created time.Time
			if img.Created != nil {
				created = *img.Created
			}
			fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", branch, cache.FormatPlatform(*m.Platform), shortID(id, noTrunc), humanSize(size), ago(created))
		}
	}
	return tw.Flush()
}

func mustNames(s *cache.Store, id digest.Digest) []string {
	names, _ := s.NamesOf(id)
	return names
}
