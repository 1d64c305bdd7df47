package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newDiffCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			changes, err := c.Changes()
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintln(cmd.OutOrStdout(), ch)
			}
			return nil
		},
	}
}
