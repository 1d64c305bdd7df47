package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
)

func newVolumeCommand(g *globals) *cobra.Command {
	var labels []string
	create := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			l := map[string]string{}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				l[k] = v
			}
			v, err := container.NewStore(storeRoot(g)).CreateVolume(name, l)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	create.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	ls := newVolumeLsCommand(g)
	var f string
	inspect := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			var objs []any
			for _, a := range args {
				v, err := cs.Volume(a)
				if err != nil {
					return err
				}
				objs = append(objs, v)
			}
			return format.Inspect(cmd.OutOrStdout(), f, objs)
		},
	}
	inspect.Flags().StringVarP(&f, "format", "f", "", "format the output using the given Go template, or json")
	var force bool
	rm := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			var failed error
			for _, a := range args {
				if err := cs.RemoveVolume(a); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					failed = exitError(1)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return failed
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	return group("volume", "Manage volumes", create, ls, inspect, rm, newVolumePruneCommand(g))
}

// volumeRow is one volume as `volume ls --format` sees it (docker's names).
type volumeRow struct {
	Name, Driver, Scope, Mountpoint, Labels, Links, Size string
	Group, Availability, Status                          string // cluster volumes only: N/A

	labels map[string]string
}

// Label is docker's {{.Label "key"}}.
func (r volumeRow) Label(name string) string { return r.labels[name] }

var volumeSpec = format.Spec{
	Table: "table {{.Driver}}\t{{.Name}}",
	Quiet: "{{.Name}}",
	Headers: map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
		"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS"},
}

func newVolumeLsCommand(g *globals) *cobra.Command {
	var o format.Options
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fa, err := filter.Parse(filters)
			if err != nil {
				return err
			}
			cs := container.NewStore(storeRoot(g))
			vs, err := cs.Volumes()
			if err != nil {
				return err
			}
			inUse := func(v container.Volume) bool {
				users, err := cs.VolumeUsers(v.Name)
				return err == nil && len(users) > 0
			}
			type V = container.Volume
			if vs, err = filter.Apply(fa, filter.Keys[V]{
				"dangling": filter.Bool(func(v V) bool { return !inUse(v) }),
				"driver":   filter.Exact(func(v V) string { return v.Driver }),
				"label":    filter.Label(func(v V) map[string]string { return v.Labels }),
				"name":     filter.Substring(func(v V) string { return v.Name }),
			}, vs); err != nil {
				return err
			}
			rows := make([]volumeRow, 0, len(vs))
			for _, v := range vs {
				rows = append(rows, volumeRow{Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint,
					Labels: joinLabels(v.Labels), Links: "N/A", Size: "N/A",
					Group: "N/A", Availability: "N/A", Status: "N/A", labels: v.Labels})
			}
			return format.Write(cmd.OutOrStdout(), volumeSpec, o, rows)
		},
	}
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringVar(&o.Format, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (dangling, driver, label, name)")
	return cmd
}

// joinLabels is docker's Labels column: "k=v,k2=v2", sorted.
func joinLabels(labels map[string]string) string {
	var l []string
	for k, v := range labels {
		l = append(l, k+"="+v)
	}
	slices.Sort(l)
	return strings.Join(l, ",")
}
