package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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
			res, err := s.PruneImages(cmd.Context(), cache.PruneImagesOptions{All: all, Until: until, Waiting: func() {
				fmt.Fprintln(cmd.ErrOrStderr(), "waiting for running kiln commands to finish...")
			}})
			printPrunedImages(cmd.OutOrStdout(), res.Images)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(res.Freed))
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	return cmd
}

// printPrunedImages prints docker's "untagged: NAME" and "deleted: ID"
// lines of an image prune.
func printPrunedImages(w io.Writer, images []cache.PrunedImage) {
	var lines []string
	for _, p := range images {
		for _, n := range p.Untagged {
			lines = append(lines, "untagged: "+cache.FamiliarName(n))
		}
		if p.ID != "" {
			lines = append(lines, "deleted: "+p.ID.String())
		}
	}
	printDeleted(w, "Images", lines)
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
			ir, err := s.PruneImages(cmd.Context(), cache.PruneImagesOptions{All: all, Until: until, Waiting: waiting})
			errs = append(errs, err)
			printPrunedImages(out, ir.Images)
			freed += ir.Freed
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
