package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

func newPortCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			ports := c.Ports()
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				key, err := network.NormalizePort(args[1])
				if err != nil {
					return err
				}
				if len(ports[key]) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", key, c.ShortID())
				}
				for _, b := range ports[key] {
					fmt.Fprintln(out, net.JoinHostPort(b.HostIP, b.HostPort))
				}
				return nil
			}
			for _, key := range network.SortedPorts(ports) {
				for _, b := range ports[key] {
					fmt.Fprintf(out, "%s -> %s\n", key, net.JoinHostPort(b.HostIP, b.HostPort))
				}
			}
			return nil
		},
	}
}
