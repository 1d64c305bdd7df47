package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
)

// duRow is one build cache record as `builder du --format` sees it (buildx's names).
type duRow struct {
	ID, CreatedAt, LastUsedAt, Description, Type, Reclaimable, Size string

	size        int64
	reclaimable bool
	rec         cache.CachedStep
}

var duSpec = format.Spec{
	Table: "table {{.ID}}\t{{.Reclaimable}}\t{{.Size}}\t{{.LastUsedAt}}",
	Quiet: "{{.ID}}",
	Headers: map[string]string{"ID": "ID", "CreatedAt": "CREATED AT", "LastUsedAt": "LAST ACCESSED", "Description": "DESCRIPTION",
		"Type": "TYPE", "Reclaimable": "RECLAIMABLE", "Size": "SIZE"},
}

func newBuilderDuCommand(g *globals) *cobra.Command {
	var o format.Options
	var filters []string
	cmd := &cobra.Command{
		Use:   "du [OPTIONS]",
		Short: "Show build cache disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fa, err := filter.Parse(filters)
			if err != nil {
				return err
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			rows, err := duRows(s)
			if err != nil {
				return err
			}
			rows, err = filter.Apply(fa, filter.Keys[duRow]{
				"until": filter.Until(func(r duRow) time.Time { return r.rec.LastUsed }),
				"id":    filter.Prefix(func(r duRow) string { return r.rec.Key.Encoded() }),
			}, rows)
			if err != nil {
				return err
			}
			if err := format.Write(cmd.OutOrStdout(), duSpec, o, rows); err != nil {
				return err
			}
			if o.Format != "" || o.Quiet {
				return nil
			}
			return writeDuTotals(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "", "format the output: table, table TEMPLATE, json or a Go template")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (until=DURATION, id=ID)")
	return cmd
}

// duRows lists the build cache records, most recently used first; a layer
// several records share is counted once, on the first.
func duRows(s *cache.Store) ([]duRow, error) {
	recs, err := s.CacheRecords()
	if err != nil {
		return nil, err
	}
	inImages := map[digest.Digest]bool{}
	ids, err := s.ImageIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		img, _, err := s.Image(id)
		if err != nil {
			return nil, err
		}
		for _, d := range img.RootFS.DiffIDs {
			inImages[d] = true
		}
	}
	counted := map[digest.Digest]bool{}
	var rows []duRow
	for _, r := range recs {
		var size int64
		if r.DiffID != "" && !counted[r.DiffID] {
			counted[r.DiffID] = true
			if size, err = s.ContentSize(r.DiffID); err != nil {
				size = 0 // the layer went with a concurrent prune
			}
		}
		reclaimable := !inImages[r.DiffID]
		rows = append(rows, duRow{
			ID: r.Key.Encoded()[:25], CreatedAt: r.Created.Local().Format(psTime), LastUsedAt: ago(r.LastUsed),
			Description: r.Inputs.Instruction, Type: "regular", Reclaimable: strconv.FormatBool(reclaimable),
			Size: humanSize(size), size: size, reclaimable: reclaimable, rec: r,
		})
	}
	return rows, nil
}

// writeDuTotals writes buildx's summary under the table.
func writeDuTotals(w io.Writer, rows []duRow) error {
	var shared, private, reclaimable, total int64
	for _, r := range rows {
		total += r.size
		if r.reclaimable {
			reclaimable += r.size
			private += r.size
		} else {
			shared += r.size
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	if shared > 0 {
		fmt.Fprintf(tw, "Shared:\t%s\n", humanSize(shared))
		fmt.Fprintf(tw, "Private:\t%s\n", humanSize(private))
	}
	fmt.Fprintf(tw, "Reclaimable:\t%s\n", humanSize(reclaimable))
	fmt.Fprintf(tw, "Total:\t%s\n", humanSize(total))
	return tw.Flush()
}
