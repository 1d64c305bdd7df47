package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
)

func newImportCommand(g *globals) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "import FILE|DIR|- [REPOSITORY[:TAG]]",
		Short: "Create a one-layer image from a root filesystem tarball or directory",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := builder.ImportSource{Name: args[0]}
			p, err := onePlatform(platform)
			if err != nil {
				return err
			}
			src.Platform = p
			switch fi, err := os.Stat(args[0]); {
			case args[0] == "-":
				src.Tar = os.Stdin
			case err != nil:
				return fmt.Errorf("import %s: %w", args[0], err)
			case fi.IsDir():
				src.Dir = args[0]
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src.Tar = f
			}
			tag := ""
			if len(args) == 2 {
				tag = args[1]
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			id, err := builder.Import(cmd.Context(), s, src, tag)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Println(id)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "the platform of the root filesystem, os/arch[/variant] (default: this machine's)")
	return cmd
}
