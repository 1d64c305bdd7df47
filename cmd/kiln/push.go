package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

func newPushCommand(g *globals) *cobra.Command {
	var (
		rf     registryFlags
		format string
		quiet  bool
		pf     string
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] IMAGE [DESTINATION]",
		Short: "Upload an image to a registry (under its own name, or DESTINATION)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := registry.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			dest := ""
			if len(args) == 2 {
				dest = args[1]
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			id, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			o := rf.options(quiet)
			o.Platform = pf
			res, err := registry.Push(cmd.Context(), s, args[0], dest, f, o)
			if err != nil {
				return err
			}
			if err := recordRepoDigest(s, id, res.Name, res.Manifest.Digest); err != nil {
				return err
			}
			fmt.Printf("%s: digest: %s size: %d\n", cache.FamiliarName(res.Name), res.Manifest.Digest, res.Manifest.Size)
			return nil
		},
	}
	fl := cmd.Flags()
	rf.add(fl, g)
	fl.StringVar(&format, "format", "", "manifest format: oci or docker (default: the one the image has; OCI for images kiln built)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress progress output")
	fl.StringVar(&pf, "platform", "", "push only this platform's image of a multi-platform image (default: the whole index)")
	return cmd
}
