package main

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
)

// imageRow is one line of `images` as templates see it (docker's names).
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size, SharedSize, UniqueSize, Containers string

	img *imageEntry
}

var imagesSpec = format.Spec{
	Table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
	Quiet: "{{.ID}}",
	Headers: map[string]string{
		"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
		"CreatedAt": "CREATED AT", "Size": "SIZE", "SharedSize": "SHARED SIZE",
		"UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
	},
}

const imagesDigestTable = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

func newImagesCommand(g *globals) *cobra.Command {
	var all, noTrunc, digests, tree bool
	var o format.Options
	var filters []string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fa, err := filter.Parse(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				fa["reference"] = append(fa["reference"], args[0])
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			if tree {
				if o.Format != "" || o.Quiet || len(filters) > 0 || len(args) > 0 || digests {
					return fmt.Errorf("--tree: it takes no --format, --quiet, --filter, --digests or REPOSITORY")
				}
				return printImageTree(cmd.OutOrStdout(), s, noTrunc) // images_index.go
			}
			// kiln keeps no intermediate images (a build's steps are cache
			// records, not images), so -a lists what the default does.
			_ = all
			imgs, err := imageEntries(s)
			if err != nil {
				return err
			}
			if imgs, err = filter.Apply(fa, imageFilters(s, imgs), imgs); err != nil {
				return err
			}
			// As docker's: with reference=, an image lists only its names that match.
			if pats := fa.Get("reference"); len(pats) > 0 {
				for _, e := range imgs {
					e.tags = slices.DeleteFunc(e.tags, func(n string) bool { return !matchesAny(pats, n) })
					e.repoDigests = slices.DeleteFunc(e.repoDigests, func(n string) bool { return !matchesAny(pats, n) })
				}
			}
			spec := imagesSpec
			if digests {
				spec.Table = imagesDigestTable
			}
			return format.Write(cmd.OutOrStdout(), spec, o, imageRows(imgs, noTrunc, digests || strings.Contains(o.Format, ".Digest")))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all images (kiln keeps no intermediate images: the same as the default)")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.StringVar(&o.Format, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (dangling, label, before, since, until, reference)")
	f.BoolVar(&tree, "tree", false, "show the platforms of multi-platform images")
	return cmd
}

// imageEntry is one image of the store with what listings show of it.
type imageEntry struct {
	id          digest.Digest
	created     time.Time
	size        int64
	labels      map[string]string
	tags        []string // normalized name:tag references
	repoDigests []string // normalized repository@digest references
}

// imageEntries lists the store's images, newest first.
func imageEntries(s *cache.Store) ([]*imageEntry, error) {
	ids, err := s.ImageIDs()
	if err != nil {
		return nil, err
	}
	out, listed, err := indexEntries(s) // images_index.go
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
		e := &imageEntry{id: id, size: size, labels: img.Config.Labels}
		if img.Created != nil {
			e.created = *img.Created
		}
		names, err := s.NamesOf(id)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !strings.Contains(n, "@") {
				e.tags = append(e.tags, n)
			}
		}
		if e.repoDigests, err = s.RepoDigests(id); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].created.After(out[j].created) })
	return out, nil
}

// imageFilters are the keys `images --filter` takes; each is one line.
func imageFilters(s *cache.Store, all []*imageEntry) filter.Keys[*imageEntry] {
	type I = *imageEntry
	created := func(e I) time.Time { return e.created }
	find := func(ref string) (time.Time, error) {
		id, err := s.Resolve(ref)
		if err != nil {
			return time.Time{}, err
		}
		for _, e := range all {
			if e.id == id {
				return e.created, nil
			}
		}
		return time.Time{}, fmt.Errorf("no such image: %s", ref)
	}
	return filter.Keys[I]{
		"dangling":  filter.Bool(func(e I) bool { return len(e.tags) == 0 }),
		"label":     filter.Label(func(e I) map[string]string { return e.labels }),
		"before":    filter.Before(created, find),
		"since":     filter.Since(created, find),
		"until":     filter.Until(created),
		"reference": {Parse: referencePred},
	}
}

// referencePred is docker's reference=PATTERN: the pattern (path.Match
// syntax) against each familiar name, with and without its tag.
func referencePred(pattern string) (filter.Pred[*imageEntry], error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	return func(e *imageEntry) bool {
		return slices.ContainsFunc(slices.Concat(e.tags, e.repoDigests), func(n string) bool { return matchesAny([]string{pattern}, n) })
	}, nil
}

// matchesAny is docker's reference.FamiliarMatch over patterns: each
// against the familiar name with its tag or digest, then without.
func matchesAny(patterns []string, name string) bool {
	ref, err := cache.ParseReference(name)
	if err != nil {
		return false
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, ref.FamiliarString()); ok {
			return true
		}
		if ok, _ := path.Match(p, ref.FamiliarName()); ok {
			return true
		}
	}
	return false
}

// imageRows are docker's rows: one per repository and tag (with each of
// the repository's digests when they are shown), one per repository known
// only by digest, one <none> row for an image without either.
func imageRows(imgs []*imageEntry, noTrunc, withDigests bool) []imageRow {
	var rows []imageRow
	for _, e := range imgs {
		row := func(repo, tag, dgst string) {
			r := imageRow{
				ID: shortID(e.id, noTrunc), Repository: repo, Tag: tag, Digest: dgst,
				CreatedSince: ago(e.created), CreatedAt: e.created.Local().Format(psTime),
				Size: humanSize(e.size), SharedSize: "N/A", UniqueSize: "N/A", Containers: "N/A",
				img: e,
			}
			if e.created.IsZero() {
				r.CreatedAt = "N/A"
			}
			rows = append(rows, r)
		}
		if len(e.tags) == 0 && len(e.repoDigests) == 0 {
			row("<none>", "<none>", "<none>")
			continue
		}
		tags := map[string][]string{}
		digests := map[string][]string{}
		var repos []string
		for _, n := range e.tags {
			if ref, err := cache.ParseReference(n); err == nil && ref.Tag() != "" {
				repo := ref.FamiliarName()
				if tags[repo] == nil {
					repos = append(repos, repo)
				}
				tags[repo] = append(tags[repo], ref.Tag())
			}
		}
		var digestOnly []string
		for _, n := range e.repoDigests {
			if ref, err := cache.ParseReference(n); err == nil && ref.Digest() != "" {
				repo := ref.FamiliarName()
				if digests[repo] == nil && tags[repo] == nil {
					digestOnly = append(digestOnly, repo)
				}
				digests[repo] = append(digests[repo], ref.Digest().String())
			}
		}
		for _, repo := range repos {
			ds := digests[repo]
			if !withDigests {
				ds = nil
			}
			for _, tag := range tags[repo] {
				if len(ds) == 0 {
					row(repo, tag, "<none>")
				}
				for _, d := range ds {
					row(repo, tag, d)
				}
			}
		}
		for _, repo := range digestOnly {
			if !withDigests {
				row(repo, "<none>", "<none>")
				continue
			}
			for _, d := range digests[repo] {
				row(repo, "<none>", d)
			}
		}
	}
	return rows
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
