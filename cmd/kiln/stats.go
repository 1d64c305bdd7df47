package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
)

// statsRow is one container as `stats --format` templates see it (docker's names).
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

var statsSpec = format.Spec{
	Table: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
	Headers: map[string]string{
		"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
		"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
	},
}

const statsInterval = time.Second // between two readings, as docker's

func newStatsCommand(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var fmtArg string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			list := func() ([]*container.Container, error) {
				if len(args) > 0 {
					var out []*container.Container
					for _, a := range args {
						c, err := cs.Get(a)
						if err != nil {
							return nil, err
						}
						out = append(out, c)
					}
					return out, nil
				}
				cl, err := cs.List()
				if err != nil {
					return nil, err
				}
				var out []*container.Container
				for _, c := range cl {
					if all || c.State.Running {
						out = append(out, c)
					}
				}
				return out, nil
			}
			if err := container.StatsAvailable(); err != nil {
				return err
			}
			// Checked before the first reading: a bad template fails at once.
			if err := format.Write(io.Discard, statsSpec, format.Options{Format: fmtArg}, []statsRow{}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			f, isFile := out.(*os.File)
			clear := !noStream && isFile && isTerminal(f)
			prev := map[string]container.StatsSample{}
			first := true
			for {
				cl, err := list()
				if err != nil {
					return err
				}
				if len(args) > 0 && noStream {
					for _, c := range cl {
						if !c.State.Running {
							return fmt.Errorf("container %s: %w", c.Name, container.ErrNotRunning)
						}
					}
				}
				cur := map[string]container.StatsSample{}
				for _, c := range cl {
					if s, err := c.Stats(); err == nil {
						cur[c.ID] = s
					}
				}
				if first {
					// CPU % needs two readings.
					first = false
					prev = cur
					if err := sleepCtx(cmd, statsInterval); err != nil {
						return nil
					}
					continue
				}
				rows := make([]statsRow, 0, len(cl))
				for _, c := range cl {
					rows = append(rows, newStatsRow(c, prev[c.ID], cur[c.ID], noTrunc))
				}
				if clear {
					fmt.Fprint(out, "\033[2J\033[H")
				}
				if err := format.Write(out, statsSpec, format.Options{Format: fmtArg}, rows); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				prev = cur
				if err := sleepCtx(cmd, statsInterval); err != nil {
					return nil
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	f.StringVar(&fmtArg, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	return cmd
}

func sleepCtx(cmd *cobra.Command, d time.Duration) error {
	select {
	case <-cmd.Context().Done():
		return errors.New("interrupted")
	case <-time.After(d):
		return nil
	}
}

func newStatsRow(c *container.Container, prev, cur container.StatsSample, noTrunc bool) statsRow {
	id := c.ID
	if !noTrunc {
		id = c.ShortID()
	}
	r := statsRow{Container: id, ID: id, Name: c.Name}
	if cur.Read.IsZero() {
		r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs = "--", "-- / --", "--", "--", "--", "--"
		if c.State.Running {
			r.CPUPerc, r.MemPerc = "0.00%", "0.00%"
		}
		return r
	}
	limit := cur.MemoryLimit()
	mem := float64(0)
	if limit > 0 {
		mem = float64(cur.Cgroup.MemoryUsage) / float64(limit) * 100
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", container.CPUPercent(prev, cur))
	r.MemUsage = binarySize(cur.Cgroup.MemoryUsage) + " / " + binarySize(limit)
	r.MemPerc = fmt.Sprintf("%.2f%%", mem)
	r.NetIO = humanSize(int64(cur.NetRx)) + " / " + humanSize(int64(cur.NetTx))
	r.BlockIO = humanSize(int64(cur.Cgroup.BlockRead)) + " / " + humanSize(int64(cur.Cgroup.BlockWrite))
	r.PIDs = fmt.Sprint(cur.Cgroup.Pids)
	return r
}

// binarySize is docker's units.BytesSize: "1.5MiB".
func binarySize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
