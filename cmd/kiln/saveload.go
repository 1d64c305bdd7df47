package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/archive"
)

func newSaveCommand(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (OCI layout, or docker-archive)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "oci" && format != "docker" {
				return fmt.Errorf("--format %q: expected oci or docker", format)
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			if output != "" && output != "-" {
				return archive.SaveFile(cmd.Context(), s, output, args, archive.Format(format))
			}
			return archive.Save(cmd.Context(), s, os.Stdout, args, archive.Format(format))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", "oci", "archive format: oci or docker")
	return cmd
}

func newLoadCommand(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive (OCI layout or docker-archive) or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			loaded, err := archive.Load(cmd.Context(), s, r)
			if err != nil {
				if input != "" {
					return fmt.Errorf("load %s: %w", input, err)
				}
				return fmt.Errorf("load: %w", err)
			}
			if quiet {
				return nil
			}
			for _, l := range loaded {
				if len(l.Names) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", l.ID)
				}
				for _, n := range l.Names {
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", cache.FamiliarName(n))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from a tar archive file instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}
