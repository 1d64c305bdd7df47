package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

// pruneFlags are what every prune takes.
type pruneFlags struct {
	force   bool
	filters []string
}

func (f *pruneFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&f.filters, "filter", nil, "provide filter values (label=KEY[=VALUE], label!=KEY[=VALUE], until=DURATION|TIMESTAMP)")
}

// pruneFilter compiles the prune's --filter values: label=, label!= and
// until= (a duration ago, a timestamp or a date), as docker's prunes take.
// Other keys are refused. Without filters the result is nil: everything.
func pruneFilter[T any](f *pruneFlags, labels func(T) map[string]string, created func(T) time.Time) (filter.Pred[T], error) {
	args, err := filter.Parse(f.filters)
	if err != nil || len(args) == 0 {
		return nil, err
	}
	return filter.Compile(args, filter.Keys[T]{
		"label":  filter.Label(labels),
		"label!": filter.NotLabel(labels),
		"until":  filter.Until(created),
	})
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
			match, err := pruneFilter(f, containerLabels, containerCreated)
			if err != nil {
				return err
			}
			if !f.ask(cmd, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			res, err := container.NewStore(storeRoot(g)).PruneContainersMatching(match)
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
			match, err := pruneFilter(f, volumeLabels, volumeCreated)
			if err != nil {
				return err
			}
			if !f.ask(cmd, warning) {
				return nil
			}
			res, err := container.NewStore(storeRoot(g)).PruneVolumesMatching(all, match)
			printDeleted(cmd.OutOrStdout(), "Volumes", res.Removed)
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(res.Freed))
			return err
		},
	}
	f.register(cmd)
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
			match, err := pruneFilter(f, imageLabels, imageCreated)
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
			res, err := s.PruneImages(cmd.Context(), cache.PruneImagesOptions{All: all, Match: matchImage(match), Waiting: func() {
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
			cmatch, err := pruneFilter(f, containerLabels, containerCreated)
			if err != nil {
				return err
			}
			nmatch, _ := pruneFilter(f, networkLabels, networkCreated)
			vmatch, _ := pruneFilter(f, volumeLabels, volumeCreated)
			imatch, _ := pruneFilter(f, imageLabels, imageCreated)
			bmatch, _ := pruneFilter(f, buildCacheLabels, buildCacheUsed)
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
			res, err := cs.PruneContainersMatching(cmatch)
			errs = append(errs, err)
			printDeleted(out, "Containers", res.Removed)
			freed += res.Freed
			if ns, err := openNetworks(g); err == nil {
				names, err := ns.PruneMatching(nmatch)
				errs = append(errs, err)
				printDeleted(out, "Networks", names)
			} else {
				errs = append(errs, err)
			}
			if volumes {
				res, err := cs.PruneVolumesMatching(false, vmatch)
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
			ir, err := s.PruneImages(cmd.Context(), cache.PruneImagesOptions{All: all, Match: matchImage(imatch), Waiting: waiting})
			errs = append(errs, err)
			printPrunedImages(out, ir.Images)
			freed += ir.Freed
			bc, err := s.PruneBuildCache(cmd.Context(), cache.PruneOptions{All: all, Match: bmatch}, waiting)
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

// What the prune filters see of each kind of object.
func containerLabels(c *container.Container) map[string]string { return c.Config.Config.Labels }
func containerCreated(c *container.Container) time.Time        { return c.Created }
func volumeLabels(v container.Volume) map[string]string        { return v.Labels }
func volumeCreated(v container.Volume) time.Time               { return v.CreatedAt }
func networkLabels(n *network.Network) map[string]string       { return n.Labels }
func networkCreated(n *network.Network) time.Time              { return n.Created }

// Build cache records carry no labels: label= matches none, label!= all.
func buildCacheLabels(cache.CachedStep) map[string]string { return nil }
func buildCacheUsed(r cache.CachedStep) time.Time         { return r.LastUsed }

type imageRef struct {
	id  digest.Digest
	img ocispec.Image
}

func imageLabels(i imageRef) map[string]string { return i.img.Config.Labels }

// imageCreated is an image's creation time; one without any is never
// "until" old enough, as docker's.
func imageCreated(i imageRef) time.Time {
	if i.img.Created == nil {
		return time.Now().Add(time.Hour)
	}
	return *i.img.Created
}

func matchImage(p filter.Pred[imageRef]) func(digest.Digest, ocispec.Image) bool {
	if p == nil {
		return nil
	}
	return func(id digest.Digest, img ocispec.Image) bool { return p(imageRef{id, img}) }
}
