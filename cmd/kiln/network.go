package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

func newNetworkCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(newNetworkCreateCommand(g), newNetworkLsCommand(g), newNetworkInspectCommand(g),
		newNetworkRmCommand(g), newNetworkPruneCommand(g), newNetworkConnectCommand(g), newNetworkDisconnectCommand(g))
	return cmd
}

func openNetworks(g *globals) (*network.Store, error) { return network.Open(storeRoot(g)) }

func newNetworkCreateCommand(g *globals) *cobra.Command {
	var o network.CreateOptions
	var driver string
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "bridge" {
				return fmt.Errorf("plugin %q not found: only the bridge driver is supported", driver)
			}
			o.Name = args[0]
			for _, l := range labels {
				if o.Labels == nil {
					o.Labels = map[string]string{}
				}
				k, v, _ := strings.Cut(l, "=")
				o.Labels[k] = v
			}
			ns, err := openNetworks(g)
			if err != nil {
				return err
			}
			n, err := ns.Create(o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&driver, "driver", "d", "bridge", "driver to manage the network")
	cmd.Flags().StringVar(&o.Subnet, "subnet", "", "subnet in CIDR format")
	cmd.Flags().StringVar(&o.Gateway, "gateway", "", "IPv4 gateway for the subnet")
	cmd.Flags().BoolVar(&o.Internal, "internal", false, "restrict external access to the network")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set metadata on a network")
	return cmd
}

// netRow is one network as ls and inspect show it, predefined modes included.
type netRow struct {
	ID, Name, Driver string
	Created          time.Time
	n                *network.Network
}

func listNetworks(g *globals) ([]netRow, error) {
	ns, err := openNetworks(g)
	if err != nil {
		return nil, err
	}
	nets, err := ns.List()
	if err != nil {
		return nil, err
	}
	var rows []netRow
	for _, n := range nets {
		rows = append(rows, netRow{ID: n.ID, Name: n.Name, Driver: n.Driver, Created: n.Created, n: n})
	}
	// host and none are modes, listed as docker lists them.
	for _, m := range []struct{ name, driver string }{{network.HostNetwork, "host"}, {network.NoneNetwork, "null"}} {
		sum := sha256.Sum256([]byte(storeRoot(g) + "/" + m.name))
		rows = append(rows, netRow{ID: hex.EncodeToString(sum[:]), Name: m.name, Driver: m.driver})
	}
	return rows, nil
}

func findNetwork(rows []netRow, ref string) (netRow, error) {
	var match []netRow
	for _, r := range rows {
		if r.Name == ref || r.ID == ref {
			return r, nil
		}
		if strings.HasPrefix(r.ID, ref) {
			match = append(match, r)
		}
	}
	if len(match) == 1 {
		return match[0], nil
	}
	return netRow{}, fmt.Errorf("network %s not found: %w", ref, network.ErrNoSuchNetwork)
}

func newNetworkLsCommand(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := listNetworks(g)
			if err != nil {
				return err
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(cmd.OutOrStdout(), r.ID[:12])
				}
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\tlocal\n", r.ID[:12], r.Name, r.Driver)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	return cmd
}

// networkInspect is docker's network inspect shape.
type networkInspect struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    string                      `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       networkIPAM                 `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]networkContainer `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

type networkIPAM struct {
	Driver  string              `json:"Driver"`
	Options map[string]string   `json:"Options"`
	Config  []map[string]string `json:"Config"`
}

type networkContainer struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

func inspectNetwork(r netRow) networkInspect {
	out := networkInspect{Name: r.Name, ID: r.ID, Created: r.Created.Format(dockerTime), Scope: "local", Driver: r.Driver,
		IPAM: networkIPAM{Driver: "default", Config: []map[string]string{}}, Containers: map[string]networkContainer{},
		Options: map[string]string{}, Labels: map[string]string{}}
	n := r.n
	if n == nil {
		return out
	}
	out.Internal = n.Internal
	out.IPAM.Config = append(out.IPAM.Config, map[string]string{"Subnet": n.Subnet.String(), "Gateway": n.Gateway.String()})
	out.Options["com.docker.network.bridge.name"] = n.Bridge
	for k, v := range n.Labels {
		out.Labels[k] = v
	}
	for id, e := range n.Endpoints {
		out.Containers[id] = networkContainer{Name: e.ContainerName, EndpointID: e.EndpointID, MacAddress: e.MAC,
			IPv4Address: fmt.Sprintf("%s/%d", e.IP, n.Subnet.Bits())}
	}
	return out
}

func newNetworkInspectCommand(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := listNetworks(g)
			if err != nil {
				return err
			}
			var out []any
			for _, a := range args {
				r, err := findNetwork(rows, a)
				if err != nil {
					return err
				}
				out = append(out, inspectNetwork(r))
			}
			return writeInspect(cmd.OutOrStdout(), out, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using a Go template")
	return cmd
}

func newNetworkRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := openNetworks(g)
			if err != nil {
				return err
			}
			var failed error
			for _, a := range args {
				if a == network.HostNetwork || a == network.NoneNetwork {
					err = fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", a, network.ErrPredefined)
				} else {
					err = ns.Remove(a)
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
					failed = errors.New("failed to remove network " + a)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return failed
		},
	}
}

func newNetworkPruneCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := openNetworks(g)
			if err != nil {
				return err
			}
			names, err := ns.Prune()
			if len(names) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range names {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCommand(g *globals) *cobra.Command {
	var aliases []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			c, err := cs.Get(args[1])
			if err != nil {
				return err
			}
			return cs.ConnectNetwork(c, args[0], aliases)
		},
	}
	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			c, err := cs.Get(args[1])
			if err != nil {
				return err
			}
			return cs.DisconnectNetwork(c, args[0])
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}
