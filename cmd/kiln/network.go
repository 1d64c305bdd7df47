package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

func newNetworkCommand(g *globals) *cobra.Command {
	return group("network", "Manage networks", newNetworkCreateCommand(g), newNetworkLsCommand(g), newNetworkInspectCommand(g),
		newNetworkRmCommand(g), newNetworkPruneCommand(g), newNetworkConnectCommand(g), newNetworkDisconnectCommand(g))
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

// networkRow is one network as `network ls --format` sees it (docker's names).
type networkRow struct {
	ID, Name, Driver, Scope, IPv4, IPv6, Internal, Labels, CreatedAt string

	labels map[string]string
}

// Label is docker's {{.Label "key"}}.
func (r networkRow) Label(name string) string { return r.labels[name] }

var networkSpec = format.Spec{
	Table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
	Quiet: "{{.ID}}",
	Headers: map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
		"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"},
}

func newNetworkLsCommand(g *globals) *cobra.Command {
	var o format.Options
	var noTrunc bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fa, err := filter.Parse(filters)
			if err != nil {
				return err
			}
			nets, err := listNetworks(g)
			if err != nil {
				return err
			}
			labels := func(r netRow) map[string]string {
				if r.n == nil {
					return nil
				}
				return r.n.Labels
			}
			if nets, err = filter.Apply(fa, filter.Keys[netRow]{
				"driver": filter.Exact(func(r netRow) string { return r.Driver }),
				"id":     filter.Prefix(func(r netRow) string { return r.ID }),
				"label":  filter.Label(labels),
				"name":   filter.Substring(func(r netRow) string { return r.Name }),
				"scope":  filter.Exact(func(netRow) string { return "local" }),
				"type": {Parse: func(v string) (filter.Pred[netRow], error) {
					if v != "custom" && v != "builtin" {
						return nil, fmt.Errorf("not custom or builtin")
					}
					return func(r netRow) bool { return (r.n != nil && r.Name != network.DefaultNetwork) == (v == "custom") }, nil
				}},
			}, nets); err != nil {
				return err
			}
			rows := make([]networkRow, 0, len(nets))
			for _, r := range nets {
				id := r.ID
				if !noTrunc {
					id = id[:12]
				}
				created := r.Created.String()
				rows = append(rows, networkRow{ID: id, Name: r.Name, Driver: r.Driver, Scope: "local", IPv4: strconv.FormatBool(r.n != nil), IPv6: "false",
					Internal: strconv.FormatBool(r.n != nil && r.n.Internal), Labels: joinLabels(labels(r)), CreatedAt: created,
					labels: labels(r)})
			}
			return format.Write(cmd.OutOrStdout(), networkSpec, o, rows)
		},
	}
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "only display network IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	cmd.Flags().StringVar(&o.Format, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (driver, id, label, name, scope, type)")
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
	var f string
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
			return format.Inspect(cmd.OutOrStdout(), f, out)
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", "format the output using a Go template, or json")
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
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
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
	f := &pruneFlags{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := pruneFilter(f, networkLabels, networkCreated)
			if err != nil {
				return err
			}
			if !f.ask(cmd, "WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			ns, err := openNetworks(g)
			if err != nil {
				return err
			}
			names, err := ns.PruneMatching(match)
			if len(names) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range names {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return err
		},
	}
	f.register(cmd)
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
