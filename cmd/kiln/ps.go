package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// psRow is one container as `ps --format` templates see it (docker's names).
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, Status, State, Size, Names, Labels, Mounts, Networks string
}

func newPsCommand(g *globals) *cobra.Command {
	var all, quiet, size, noTrunc, latest bool
	var format string
	var last int
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			list, err := cs.List()
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			if !all && last <= 0 {
				var running []*container.Container
				for _, c := range list {
					if c.State.Running || c.State.Restarting {
						running = append(running, c)
					}
				}
				list = running
			}
			if last > 0 && len(list) > last {
				list = list[:last]
			}
			var imageSizes func(c *container.Container) int64
			if size {
				s, err := cache.Open(g.root)
				if err != nil {
					return err
				}
				defer s.Close()
				imageSizes = func(c *container.Container) int64 {
					n, _ := imageSize(s, c.Layers)
					return n
				}
			}
			rows := make([]psRow, 0, len(list))
			for _, c := range list {
				rows = append(rows, newPsRow(c, noTrunc, imageSizes))
			}
			return writePs(cmd.OutOrStdout(), rows, quiet, size, format)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVarP(&size, "size", "s", false, "display total file sizes")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers")
	f.StringVar(&format, "format", "", "format output using a Go template")
	return cmd
}

func newPsRow(c *container.Container, noTrunc bool, imageSize func(*container.Container) int64) psRow {
	id := c.ID
	command := strings.Join(append([]string{c.Path}, c.Args...), " ")
	if !noTrunc {
		id = c.ShortID()
		if r := []rune(command); len(r) > 20 {
			command = string(r[:19]) + "…"
		}
	}
	labels := []string{}
	for k, v := range c.Config.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	mounts := []string{}
	for _, m := range c.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		mounts = append(mounts, n)
	}
	row := psRow{
		ID: id, Image: c.ImageName, Command: strconv.Quote(command),
		CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: ago(c.Created),
		Status: statusText(c.State), State: c.State.Status, Names: c.Name,
		Labels: strings.Join(labels, ","), Mounts: strings.Join(mounts, ","), Networks: "none",
	}
	if imageSize != nil {
		rw := c.SizeRw()
		row.Size = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(rw+imageSize(c)))
	}
	return row
}

// statusText is docker's human status: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
func statusText(s container.State) string {
	since := func(t time.Time) string { return strings.TrimSuffix(ago(t), " ago") }
	switch s.Status {
	case "running":
		return "Up " + since(s.StartedAt) + healthSuffix(s.Health)
	case "paused":
		return "Up " + since(s.StartedAt) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s", s.ExitCode, ago(s.FinishedAt))
	case "exited":
		return fmt.Sprintf("Exited (%d) %s", s.ExitCode, ago(s.FinishedAt))
	case "created":
		return "Created"
	}
	return s.Status
}

func writePs(w io.Writer, rows []psRow, quiet, size bool, format string) error {
	if quiet && format == "" {
		for _, r := range rows {
			fmt.Fprintln(w, r.ID)
		}
		return nil
	}
	if format != "" && !strings.HasPrefix(format, "table") {
		tmpl, err := template.New("ps").Funcs(template.FuncMap{"json": jsonString, "upper": strings.ToUpper, "lower": strings.ToLower}).Parse(format)
		if err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		for _, r := range rows {
			if err := tmpl.Execute(w, r); err != nil {
				return err
			}
			fmt.Fprintln(w)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if format != "" {
		body := strings.TrimSpace(strings.TrimPrefix(format, "table"))
		tmpl, err := template.New("ps").Funcs(template.FuncMap{"json": jsonString}).Parse(body)
		if err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		header := strings.NewReplacer("{{.ID}}", "CONTAINER ID", "{{.Image}}", "IMAGE", "{{.Command}}", "COMMAND",
			"{{.CreatedAt}}", "CREATED AT", "{{.RunningFor}}", "CREATED", "{{.Status}}", "STATUS", "{{.Ports}}", "PORTS",
			"{{.Names}}", "NAMES", "{{.Size}}", "SIZE", "{{.State}}", "STATE", "{{.Labels}}", "LABELS", "{{.Mounts}}", "MOUNTS").Replace(body)
		fmt.Fprintln(tw, strings.ReplaceAll(header, `\t`, "\t"))
		for _, r := range rows {
			var b strings.Builder
			if err := tmpl.Execute(&b, r); err != nil {
				return err
			}
			fmt.Fprintln(tw, strings.ReplaceAll(b.String(), `\t`, "\t"))
		}
		return tw.Flush()
	}
	head := "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES"
	if size {
		head += "\tSIZE"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		line := strings.Join([]string{r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names}, "\t")
		if size {
			line += "\t" + r.Size
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
