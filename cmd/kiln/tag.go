package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

func newTagCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			id, _, err := s.ResolveTarget(args[0]) // an index stays an index
			if err != nil {
				return err
			}
			return s.Tag(args[1], id)
		},
	}
}

func newRmiCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			var errs []error
			for _, a := range args {
				if err := removeImage(cmd, s, a, force); err != nil {
					errs = append(errs, err)
				}
			}
			// Content no image needs any more goes now, unless another kiln
			// process has the store open: then the next collection takes it.
			if _, err := s.GC(cmd.Context()); err != nil && !errors.Is(err, cache.ErrBusy) {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the image even when several names refer to it")
	return cmd
}

// removeImage untags a name, or deletes an image given by ID, as docker rmi does.
func removeImage(cmd *cobra.Command, s *cache.Store, arg string, force bool) error {
	if d, isIndex, err := s.ResolveTarget(arg); err == nil && isIndex {
		return removeIndex(cmd, s, arg, d, force) // rmi_index.go
	}
	id, err := s.Resolve(arg)
	if err != nil {
		return err
	}
	names, err := s.NamesOf(id)
	if err != nil {
		return err
	}
	byName := false
	if n, err := cache.NormalizeName(arg); err == nil {
		for _, x := range names {
			byName = byName || x == n
		}
	}
	if byName {
		// The last name of an image a container uses needs -f, and then
		// only goes: the image stays for the container.
		keep, err := container.NewStore(s.Root()).ImageRemoval(id, arg, true, len(names) == 1, force)
		if err != nil {
			return err
		}
		if _, err := s.Untag(arg); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", cache.FamiliarName(mustNormalize(arg)))
		if len(names) > 1 || keep {
			return nil
		}
	} else {
		if len(names) > 1 && !force {
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", id.Encoded()[:12])
		}
		if _, err := container.NewStore(s.Root()).ImageRemoval(id, arg, false, false, force); err != nil {
			return err
		}
		for _, n := range names {
			if _, err := s.Untag(n); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", cache.FamiliarName(n))
		}
	}
	if err := s.DeleteImage(id); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", id)
	return nil
}

func mustNormalize(name string) string {
	n, err := cache.NormalizeName(name)
	if err != nil {
		return name
	}
	return n
}
