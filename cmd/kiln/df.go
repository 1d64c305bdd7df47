package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// systemDf writes `system df [-v]`.
func systemDf(w io.Writer, g *globals, verbose bool) error {
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
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", iu.Total, iu.Active, humanSize(iu.Size), withPercent(iu.Reclaimable, iu.Size))
	fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s\n", cu.Containers, cu.RunningContainers, humanSize(cu.ContainersSize), withPercent(cu.ContainersReclaimable, cu.ContainersSize))
	fmt.Fprintf(tw, "Local Volumes\t%d\t%d\t%s\t%s\n", cu.Volumes, cu.UsedVolumes, humanSize(cu.VolumesSize), withPercent(cu.VolumesReclaimable, cu.VolumesSize))
	fmt.Fprintf(tw, "Build Cache\t%d\t0\t%s\t%s\n", bu.CacheRecords, humanSize(bu.CacheSize), humanSize(bu.CacheReclaimable))
	return tw.Flush()
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
	return tw.Flush()
}
