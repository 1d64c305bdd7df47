package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newImagesCommand(g *globals) *cobra.Command {
	var quiet, noTrunc, tree bool
	cmd := &cobra.Command{
		Use:     "images [OPTIONS]",
		Aliases: []string{"image ls"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			if tree {
				return printImageTree(cmd.OutOrStdout(), s, noTrunc) // images_index.go
			}
			rows, err := imageRows(s)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				seen := map[digest.Digest]bool{}
				for _, r := range rows {
					if !seen[r.id] {
						seen[r.id] = true
						fmt.Fprintln(out, shortID(r.id, noTrunc))
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.repo, r.tag, shortID(r.id, noTrunc), ago(r.created), humanSize(r.size))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVar(&tree, "tree", false, "show the platforms of multi-platform images")
	return cmd
}

type imageRow struct {
	repo, tag string
	id        digest.Digest
	created   time.Time
	size      int64
}

// imageRows lists one row per name, and one <none> row per unnamed image, newest first.
func imageRows(s *cache.Store) ([]imageRow, error) {
	ids, err := s.ImageIDs()
	if err != nil {
		return nil, err
	}
	rows, listed, err := indexRows(s) // images_index.go
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if listed[id] && len(mustNames(s, id)) == 0 {
			continue // shown as its index
		}
		img, _, err := s.Image(id)
		if err != nil {
			return nil, err
		}
		size, err := imageSize(s, img.RootFS.DiffIDs)
		if err != nil {
			return nil, err
		}
		var created time.Time
		if img.Created != nil {
			created = *img.Created
		}
		names, err := s.NamesOf(id)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			rows = append(rows, imageRow{repo: "<none>", tag: "<none>", id: id, created: created, size: size})
		}
		for _, n := range names {
			repo, tag := splitName(cache.FamiliarName(n))
			rows = append(rows, imageRow{repo: repo, tag: tag, id: id, created: created, size: size})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].created.Equal(rows[j].created) {
			return rows[i].created.After(rows[j].created)
		}
		return rows[i].repo+":"+rows[i].tag < rows[j].repo+":"+rows[j].tag
	})
	return rows, nil
}

func imageSize(s *cache.Store, diffIDs []digest.Digest) (int64, error) {
	var total int64
	seen := map[digest.Digest]bool{}
	for _, d := range diffIDs {
		if seen[d] {
			continue
		}
		seen[d] = true
		n, err := s.ContentSize(d)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func splitName(familiar string) (repo, tag string) {
	if i := strings.LastIndex(familiar, ":"); i > strings.LastIndex(familiar, "/") {
		return familiar[:i], familiar[i+1:]
	}
	return familiar, "<none>"
}

func shortID(id digest.Digest, noTrunc bool) string {
	if noTrunc {
		return id.String()
	}
	return id.Encoded()[:12]
}

// humanSize formats bytes as docker does (go-units HumanSize: decimal units, 3 significant digits).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// ago formats a time as docker does: "5 minutes ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "Less than a second ago"
	case d < time.Minute:
		return plural(int(d.Seconds()), "second") + " ago"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour") + " ago"
	case d < 14*24*time.Hour:
		return plural(int(d.Hours()/24), "day") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d.Hours()/24/7), "week") + " ago"
	case d < 2*365*24*time.Hour:
		return plural(int(d.Hours()/24/30), "month") + " ago"
	}
	return plural(int(d.Hours()/24/365), "year") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		if unit == "hour" {
			return "About an hour"
		}
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
