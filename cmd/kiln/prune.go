package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// pruneFlags are what every prune takes.
type pruneFlags struct {
	force   bool
	filters []string
}

func (f *pruneFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&f.filters, "filter", nil, "provide filter values (until=DURATION or TIMESTAMP)")
}

// until is the until= filter's time, or zero.
func (f *pruneFlags) until() (time.Time, error) {
	var t time.Time
	for _, kv := range f.filters {
		k, v, _ := strings.Cut(kv, "=")
		if k != "until" {
			return t, fmt.Errorf("invalid filter %q: only until= is supported", kv)
		}
		var err error
		if t, err = parseSince(v); err != nil {
			return t, fmt.Errorf("invalid filter %q: %w", kv, err)
		}
	}
	return t, nil
}

// ask asks for confirmation unless forced.
func (f *pruneFlags) ask(cmd *cobra.Command, warning string) bool {
	return f.force || confirm(cmd.InOrStdin(), cmd.OutOrStdout(), warning+"\nAre you sure you want to continue? [y/N] ")
}

// printDeleted prints a "Deleted X:" section, as docker's prunes do.
func printDeleted(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "Deleted "+title+":")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
}

func newContainerPruneCommand(g *globals) *cobra.Command {
	f := &pruneFlags{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			until, err := f.until()
			if err != nil {
				return err
			}
			if !f.ask(cmd, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			res, err := container.NewStore(storeRoot(g)).PruneContainers(until)
			printDeleted(cmd.OutOrStdout(), "Containers", res.Removed)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(res.Freed))
			return err
		},
	}
	f.register(cmd)
	return cmd
}

func newVolumePruneCommand(g *globals) *cobra.Command {
	f := &pruneFlags{}
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !f.ask(cmd, warning) {
				return nil
			}
			res, err := container.NewStore(storeRoot(g)).PruneVolumes(all)
			printDeleted(cmd.OutOrStdout(), "Volumes", res.Removed)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(res.Freed))
			return err
		},
	}
	cmd.Flags().BoolVarP(&f.force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	return cmd
}

func newImageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := newImagesCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list"}
	rm := newRmiCommand(g)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	cmd.AddCommand(newImagePruneCommand(g), ls, rm)
	return cmd
}

func newImagePruneCommand(g *globals) *cobra.Command {
	f := &pruneFlags{}
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			until, err := f.until()
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !f.ask(cmd, warning) {
				return nil
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			lines, freed, err := pruneImages(cmd.Context(), cmd.ErrOrStderr(), s, all, until)
			printDeleted(cmd.OutOrStdout(), "Images", lines)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(freed))
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	return cmd
}

// imageUsers maps each image some container uses to those containers.
func imageUsers(root string) (map[digest.Digest][]*container.Container, error) {
	list, err := container.NewStore(root).List()
	if err != nil {
		return nil, err
	}
	users := map[digest.Digest][]*container.Container{}
	for _, c := range list {
		users[c.Image] = append(users[c.Image], c)
	}
	return users, nil
}

// pruneImages removes the images no container uses: the untagged ones,
// or with all every one (untagging it first), created before until when
// that is not zero; then the content only they kept. It returns docker's
// "untagged: NAME" and "deleted: ID" lines and the disk space freed (the
// image records and what the collection removed, each measured as it goes).
func pruneImages(ctx context.Context, warn io.Writer, s *cache.Store, all bool, until time.Time) ([]string, int64, error) {
	users, err := imageUsers(s.Root())
	if err != nil {
		return nil, 0, err
	}
	ids, err := s.ImageIDs()
	if err != nil {
		return nil, 0, err
	}
	var lines []string
	var freed int64
	for _, id := range ids {
		if len(users[id]) > 0 {
			continue
		}
		names, err := s.NamesOf(id)
		if err != nil {
			return lines, freed, err
		}
		if len(names) > 0 && !all {
			continue
		}
		if !until.IsZero() {
			img, _, err := s.Image(id)
			if err != nil || img.Created == nil || !img.Created.Before(until) {
				continue
			}
		}
		for _, n := range names {
			if _, err := s.Untag(n); err != nil {
				return lines, freed, err
			}
			lines = append(lines, "untagged: "+cache.FamiliarName(n))
		}
		record := cache.SpaceOnDisk(filepath.Join(s.Root(), "images", id.Encoded()+".json"))
		if err := s.DeleteImage(id); err != nil {
			return lines, freed, err
		}
		lines = append(lines, "deleted: "+id.String())
		freed += record
	}
	n, err := gcWait(ctx, s, func() { fmt.Fprintln(warn, "waiting for running kiln commands to finish...") })
	return lines, freed + n, err
}

// gcWait collects the store's garbage, waiting for the other kiln
// processes that have it open.
func gcWait(ctx context.Context, s *cache.Store, waiting func()) (int64, error) {
	told := false
	for {
		freed, err := s.GC(ctx)
		if !errors.Is(err, cache.ErrBusy) {
			return freed, err
		}
		if !told {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func newSystemPruneCommand(g *globals) *cobra.Command {
	f := &pruneFlags{}
	var all, volumes bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			until, err := f.until()
			if err != nil {
				return err
			}
			items := []string{"all stopped containers", "all networks not used by at least one container"}
			if volumes {
				items = append(items, "all anonymous volumes not used by at least one container")
			}
			if all {
				items = append(items, "all images without at least one container associated to them", "all build cache")
			} else {
				items = append(items, "all dangling images", "unused build cache")
			}
			if !f.ask(cmd, "WARNING! This will remove:\n  - "+strings.Join(items, "\n  - ")+"\n") {
				return nil
			}
			out := cmd.OutOrStdout()
			cs := container.NewStore(storeRoot(g))
			var errs []error
			var freed int64
			res, err := cs.PruneContainers(until)
			errs = append(errs, err)
			printDeleted(out, "Containers", res.Removed)
			freed += res.Freed
			if ns, err := openNetworks(g); err == nil {
				names, err := ns.Prune()
				errs = append(errs, err)
				printDeleted(out, "Networks", names)
			} else {
				errs = append(errs, err)
			}
			if volumes {
				res, err := cs.PruneVolumes(false)
				errs = append(errs, err)
				printDeleted(out, "Volumes", res.Removed)
				freed += res.Freed
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			defer s.Close()
			waiting := func() { fmt.Fprintln(cmd.ErrOrStderr(), "waiting for running kiln commands to finish...") }
			lines, n, err := pruneImages(cmd.Context(), cmd.ErrOrStderr(), s, all, until)
			errs = append(errs, err)
			printDeleted(out, "Images", lines)
			freed += n
			bc, err := s.PruneBuildCache(cmd.Context(), cache.PruneOptions{All: all}, waiting)
			errs = append(errs, err)
			if bc.Records > 0 {
				fmt.Fprintf(out, "Deleted build cache objects: %d\n\n", bc.Records)
			}
			freed += bc.Freed
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(freed))
			return errors.Join(errs...)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	return cmd
}

// refuseImageInUse is rmi's check of the containers using the image id,
// with docker's messages: the last name of an image some container uses
// needs -f (which then only untags), and an image deleted by ID cannot go
// while a container runs it, nor without -f while a stopped one has it.
func refuseImageInUse(root string, id digest.Digest, arg string, byName, lastName, force bool) (keep bool, err error) {
	users, err := imageUsers(root)
	if err != nil {
		return false, err
	}
	cs := users[id]
	if len(cs) == 0 {
		return false, nil
	}
	short := id.Encoded()[:12]
	if byName {
		if lastName && !force {
			return true, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", arg, cs[0].ShortID(), short)
		}
		return true, nil
	}
	for _, c := range cs {
		if c.State.Running || c.State.Restarting {
			return true, fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, c.ShortID())
		}
	}
	if !force {
		return true, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, cs[0].ShortID())
	}
	return false, nil
}
