package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
)

// systemDf writes `system df [-v] [--format F]`.
func systemDf(w io.Writer, g *globals, verbose bool, f string) error {
	if verbose && f != "" {
		return fmt.Errorf("--format cannot be combined with --verbose")
	}
	s, err := cache.Open(g.root)
	if err != nil {
		return err
	}
	defer s.Close()
	iu, err := s.ImageUsage()
	if err != nil {
		return err
	}
	cu, err := container.NewStore(s.Root()).DiskUsage()
	if err != nil {
		return err
	}
	bu, err := s.Usage()
	if err != nil {
		return err
	}
	if verbose {
		return systemDfVerbose(w, iu, cu, bu)
	}
	rows := []dfLine{
		{Type: "Images", TotalCount: fmt.Sprint(iu.Total), Active: fmt.Sprint(iu.Active), Size: humanSize(iu.Size), Reclaimable: withPercent(iu.Reclaimable, iu.Size)},
		{Type: "Containers", TotalCount: fmt.Sprint(cu.Containers), Active: fmt.Sprint(cu.RunningContainers), Size: humanSize(cu.ContainersSize), Reclaimable: withPercent(cu.ContainersReclaimable, cu.ContainersSize)},
		{Type: "Local Volumes", TotalCount: fmt.Sprint(cu.Volumes), Active: fmt.Sprint(cu.UsedVolumes), Size: humanSize(cu.VolumesSize), Reclaimable: withPercent(cu.VolumesReclaimable, cu.VolumesSize)},
		{Type: "Build Cache", TotalCount: fmt.Sprint(bu.CacheRecords), Active: "0", Size: humanSize(bu.CacheSize), Reclaimable: humanSize(bu.CacheReclaimable)},
	}
	return format.Write(w, dfSpec, format.Options{Format: f}, rows)
}

// dfLine is one line of `system df` as templates see it (docker's names).
type dfLine struct {
	Type, TotalCount, Active, Size, Reclaimable string
}

var dfSpec = format.Spec{
	Table:   "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
	Headers: map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"},
}

func systemDfVerbose(w io.Writer, iu cache.ImageUsage, cu container.Usage, bu cache.DiskUsage) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, r := range iu.Images {
		repo, tag, created := "<none>", "<none>", ""
		if r.Name != "" {
			repo, tag = splitName(cache.FamiliarName(r.Name))
		}
		if r.Created != nil {
			created = ago(*r.Created)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", repo, tag, r.ID.Encoded()[:12], created,
			humanSize(r.Size), humanSize(r.Shared), humanSize(r.Unique), r.Containers)
	}
	fmt.Fprintln(tw, "\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	for _, c := range cu.ContainerList {
		vols := 0
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				vols++
			}
		}
		row := newPsRow(c, false, nil)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", row.ID, row.Image, row.Command, vols,
			humanSize(cu.ContainerSize[c.ID]), row.RunningFor, row.Status, row.Names)
	}
	fmt.Fprintln(tw, "\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE")
	for _, v := range cu.VolumeList {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", v.Name, cu.VolumeLinks[v.Name], humanSize(cu.VolumeSize[v.Name]))
	}
	fmt.Fprintf(tw, "\nBuild cache usage: %s\n", humanSize(bu.CacheSize))
	if bu.Trash > 0 {
		fmt.Fprintf(tw, "\nBeing deleted in the background: %s\n", humanSize(bu.Trash))
	}
	return tw.Flush()
}
