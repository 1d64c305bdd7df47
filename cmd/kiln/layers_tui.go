package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/imageview"
	"github.com/kiln-build/kiln/imageview/tui"
)

func runLayersTUI(name string, a *imageview.Analysis) error {
	return tui.Run(name, a, humanSize)
}

// newDiveCommand is `kiln dive IMAGE`, the interactive view of kiln layers -i.
func newDiveCommand(g *globals) *cobra.Command {
	var o layersFlags
	cmd := &cobra.Command{
		Use:   "dive IMAGE",
		Short: "Browse an image's layers and their files (kiln layers -i)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := o.target()
			if err != nil {
				return err
			}
			a, err := imageview.AnalyzeImage(s, args[0], p)
			if err != nil {
				return err
			}
			return runLayersTUI(args[0], a)
		},
	}
	cmd.Flags().StringVar(&o.platform, "platform", "", "the platform's image of a multi-platform image (default: this machine's)")
	return cmd
}
