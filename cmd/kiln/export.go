package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newExportCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				err = c.Export(cmd.Context(), f)
				return errors.Join(err, f.Close())
			}
			if f, ok := w.(*os.File); ok && isTerminal(f) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			return c.Export(cmd.Context(), w)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}
