package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
)

// historyRow is one history entry as templates see it (docker's names).
type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

var historySpec = format.Spec{
	Table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
	Quiet: "{{.ID}}",
	Headers: map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
		"Size": "SIZE", "Comment": "COMMENT"},
}

func newHistoryCommand(g *globals) *cobra.Command {
	var noTrunc, human bool
	var o format.Options
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
			var rows []historyRow
			for i := len(img.History) - 1; i >= 0; i-- {
				h := img.History[i]
				r := historyRow{ID: "<missing>", CreatedSince: "N/A", CreatedAt: "N/A", Comment: h.Comment}
				if i == len(img.History)-1 {
					r.ID = shortID(id, noTrunc)
				}
				if h.Created != nil {
					r.CreatedAt = time.Unix(h.Created.Unix(), 0).Format(time.RFC3339)
					if h.Created.After(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
						r.CreatedSince = ago(*h.Created)
					}
				}
				r.CreatedBy = strings.Join(strings.Fields(h.CreatedBy), " ")
				if !noTrunc && len([]rune(r.CreatedBy)) > 45 {
					r.CreatedBy = string([]rune(r.CreatedBy)[:44]) + "…"
				}
				r.Size = humanSize(sizes[i])
				if !human {
					r.Size, r.CreatedSince = strconv.FormatInt(sizes[i], 10), r.CreatedAt
				}
				rows = append(rows, r)
			}
			spec := historySpec
			if !human {
				spec.Table = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			}
			return format.Write(cmd.OutOrStdout(), spec, o, rows)
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().StringVar(&o.Format, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	return cmd
}
