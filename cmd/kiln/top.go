package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newTopCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			titles, procs, err := c.Top(args[1:])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(titles, "\t"))
			for _, p := range procs {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}
