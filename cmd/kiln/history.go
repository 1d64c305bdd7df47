package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newHistoryCommand(g *globals) *cobra.Command {
	var noTrunc, quiet bool
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			id, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			img, _, err := s.Image(id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				fmt.Fprintln(out, shortID(id, noTrunc))
				for range len(img.History) - 1 {
					fmt.Fprintln(out, "<missing>")
				}
				return nil
			}
			// Non-empty history entries match the layers in order.
			sizes := make([]int64, len(img.History))
			li := 0
			for i, h := range img.History {
				if h.EmptyLayer || li >= len(img.RootFS.DiffIDs) {
					continue
				}
				if sizes[i], err = s.ContentSize(img.RootFS.DiffIDs[li]); err != nil {
					return err
				}
				li++
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for i := len(img.History) - 1; i >= 0; i-- {
				h := img.History[i]
				row := "<missing>"
				if i == len(img.History)-1 {
					row = shortID(id, noTrunc)
				}
				created := "N/A"
				if h.Created != nil {
					created = ago(*h.Created)
				}
				by := strings.Join(strings.Fields(h.CreatedBy), " ")
				if !noTrunc && len([]rune(by)) > 45 {
					by = string([]rune(by)[:44]) + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row, created, by, humanSize(sizes[i]), h.Comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	return cmd
}
