package main

import (
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// imageUsage is `system df`'s view of the images, as docker's: ACTIVE
// images have a container, RECLAIMABLE is the disk space of the layers
// that no such image uses (what image prune -a would free of them).
type imageUsage struct {
	total, active     int
	size, reclaimable int64
	rows              []imageDfRow
}

type imageDfRow struct {
	repo, tag          string
	id                 digest.Digest
	created            string
	size, shared, uniq int64
	containers         int
}

func measureImages(s *cache.Store, users map[digest.Digest][]*container.Container) (imageUsage, error) {
	var u imageUsage
	ids, err := s.ImageIDs()
	if err != nil {
		return u, err
	}
	layerSize := map[digest.Digest]int64{}
	usedBy := map[digest.Digest]int{} // layer -> images that have it
	inUse := map[digest.Digest]bool{} // layers of images with containers
	diffIDs := map[digest.Digest][]digest.Digest{}
	for _, id := range ids {
		img, _, err := s.Image(id)
		if err != nil {
			continue
		}
		seen := map[digest.Digest]bool{}
		for _, d := range img.RootFS.DiffIDs {
			if seen[d] {
				continue
			}
			seen[d] = true
			diffIDs[id] = append(diffIDs[id], d)
			usedBy[d]++
			if _, ok := layerSize[d]; !ok {
				layerSize[d] = cache.SpaceOnDisk(filepath.Dir(s.SnapshotDir(d)))
			}
			if len(users[id]) > 0 {
				inUse[d] = true
			}
		}
		u.total++
		if len(users[id]) > 0 {
			u.active++
		}
		row := imageDfRow{id: id, containers: len(users[id]), repo: "<none>", tag: "<none>"}
		if img.Created != nil {
			row.created = ago(*img.Created)
		}
		names, _ := s.NamesOf(id)
		if len(names) > 0 {
			row.repo, row.tag = splitName(cache.FamiliarName(names[0]))
		}
		u.rows = append(u.rows, row)
	}
	for d, n := range layerSize {
		u.size += n
		if !inUse[d] {
			u.reclaimable += n
		}
	}
	for i := range u.rows {
		r := &u.rows[i]
		for _, d := range diffIDs[r.id] {
			r.size += layerSize[d]
			if usedBy[d] > 1 {
				r.shared += layerSize[d]
			}
		}
		r.uniq = r.size - r.shared
	}
	return u, nil
}

// systemDf writes `system df [-v]`.
func systemDf(w io.Writer, g *globals, verbose bool) error {
	s, err := cache.Open(g.root)
	if err != nil {
		return err
	}
	defer s.Close()
	cs := container.NewStore(s.Root())
	users, err := imageUsers(s.Root())
	if err != nil {
		return err
	}
	iu, err := measureImages(s, users)
	if err != nil {
		return err
	}
	cu, err := cs.DiskUsage()
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
	fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", iu.total, iu.active, humanSize(iu.size), withPercent(iu.reclaimable, iu.size))
	fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s\n", cu.Containers, cu.RunningContainers, humanSize(cu.ContainersSize), withPercent(cu.ContainersReclaimable, cu.ContainersSize))
	fmt.Fprintf(tw, "Local Volumes\t%d\t%d\t%s\t%s\n", cu.Volumes, cu.UsedVolumes, humanSize(cu.VolumesSize), withPercent(cu.VolumesReclaimable, cu.VolumesSize))
	fmt.Fprintf(tw, "Build Cache\t%d\t0\t%s\t%s\n", bu.CacheRecords, humanSize(bu.CacheSize), humanSize(bu.CacheReclaimable))
	return tw.Flush()
}

func systemDfVerbose(w io.Writer, iu imageUsage, cu container.Usage, bu cache.DiskUsage) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, r := range iu.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.repo, r.tag, r.id.Encoded()[:12], r.created,
			humanSize(r.size), humanSize(r.shared), humanSize(r.uniq), r.containers)
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
