package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newVolumeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
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
	var quiet bool
	var lsFormat string
	ls := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := container.NewStore(storeRoot(g)).Volumes()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if quiet {
				for _, v := range vs {
					fmt.Fprintln(w, v.Name)
				}
				return nil
			}
			if lsFormat != "" {
				objs := make([]any, len(vs))
				for i := range vs {
					objs[i] = vs[i]
				}
				return writeInspect(w, objs, lsFormat)
			}
			tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
			fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	ls.Flags().StringVar(&lsFormat, "format", "", "format output using a Go template")
	var format string
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
			return writeInspect(cmd.OutOrStdout(), objs, format)
		},
	}
	inspect.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
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
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
					failed = exitError(1)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return failed
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	cmd.AddCommand(create, ls, inspect, rm, newVolumePruneCommand(g))
	return cmd
}

// newContainerCommand groups the container verbs under `kiln container`.
func newContainerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	ls := newPsCommand(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	cmd.AddCommand(newRunCommand(g), newCreateCommand(g), newStartCommand(g), newStopCommand(g),
		newRestartCommand(g), newKillCommand(g), newRmCommand(g), newWaitCommand(g), ls, newLogsCommand(g),
		newExecCommand(g), newAttachCommand(g), newTopCommand(g), newDiffCommand(g), newContainerPruneCommand(g))
	return cmd
}
