package main

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// removeIndex is rmi of a multi-platform image: the name goes (all its
// names when given by ID); with the last one the index goes, and each of its
// images that nothing else names, lists or runs.
func removeIndex(cmd *cobra.Command, s *cache.Store, arg string, d digest.Digest, force bool) error {
	names, err := s.NamesOf(d)
	if err != nil {
		return err
	}
	byName := false
	if n, err := cache.NormalizeName(arg); err == nil {
		for _, x := range names {
			byName = byName || x == n
		}
	}
	if !byName && len(names) > 1 && !force {
		return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", d.Encoded()[:12])
	}
	last := !byName || len(names) == 1
	_, images, err := s.Index(d)
	if err != nil {
		return err
	}
	cs := container.NewStore(s.Root())
	keep := map[digest.Digest]bool{}
	if last {
		// Docker's rules, for each image: one a container runs stops rmi
		// (or, with the last name and -f, stays for the container).
		for _, im := range images {
			k, err := cs.ImageRemoval(im.Image, arg, byName, true, force)
			if err != nil {
				return err
			}
			keep[im.Image] = k
		}
	}
	untag := names
	if byName {
		untag = []string{mustNormalize(arg)}
	}
	for _, n := range untag {
		if _, err := s.Untag(n); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", cache.FamiliarName(n))
	}
	if !last {
		return nil
	}
	if err := s.DeleteIndex(d); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", d)
	listed, err := s.IndexedImages()
	if err != nil {
		return err
	}
	for _, im := range images {
		if keep[im.Image] || listed[im.Image] > 0 {
			continue
		}
		if own, err := s.NamesOf(im.Image); err != nil || len(own) > 0 {
			continue
		}
		if err := s.DeleteImage(im.Image); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", im.Image)
	}
	return nil
}
