package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newBuilderPruneCommand(g *globals) *cobra.Command {
	var (
		all         bool
		force       bool
		keepStorage string
		filters     []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := cache.PruneOptions{All: all}
			if keepStorage != "" {
				n, err := units.RAMInBytes(keepStorage)
				if err != nil {
					return fmt.Errorf("--keep-storage %q: %w", keepStorage, err)
				}
				opts.KeepStorage = n
			}
			match, err := pruneFilter(&pruneFlags{filters: filters}, buildCacheLabels, buildCacheUsed)
			if err != nil {
				return err
			}
			opts.Match = match
			if !force {
				warning := "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
				if all {
					warning = "WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] "
				}
				if !confirm(cmd.InOrStdin(), cmd.OutOrStdout(), warning) {
					return nil
				}
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.PruneBuildCache(cmd.Context(), opts, func() {
				fmt.Fprintln(cmd.ErrOrStderr(), "waiting for running kiln commands to finish...")
			})
			if err != nil {
				return err
			}
			if all {
				// RUN --mount=type=cache contents go too, but for those in use.
				n, err := s.RemoveCacheMounts()
				if err != nil {
					return err
				}
				res.Freed += n
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted build cache objects: %d\nTotal reclaimed space: %s\n", res.Records, humanSize(res.Freed))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "remove all unused build cache, not just what no image uses")
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringVar(&keepStorage, "keep-storage", "", "amount of disk space to keep for cache")
	f.StringArrayVar(&filters, "filter", nil, "provide filter values (until=DURATION|TIMESTAMP, label=..., label!=...)")
	return cmd
}

// confirm asks a yes/no question on the terminal, as docker's prune does.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	line = strings.TrimSpace(strings.ToLower(line))
	return line == "y" || line == "yes"
}

func newSystemDfCommand(g *globals) *cobra.Command {
	var verbose bool
	var f string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show kiln disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return systemDf(cmd.OutOrStdout(), g, verbose, f) // df.go
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	cmd.Flags().StringVar(&f, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	return cmd
}

func withPercent(part, total int64) string {
	pct := 0
	if total > 0 {
		pct = int(100 * part / total)
	}
	return fmt.Sprintf("%s (%d%%)", humanSize(part), pct)
}
