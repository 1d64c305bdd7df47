package container

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/cache"
)

// Pruned is what a prune removed: the IDs or names, and the disk space
// they took (DiskUsage, measured just before each removal).
type Pruned struct {
	Removed []string
	Freed   int64
}

// PruneContainers removes every container that is not running (nor
// restarting), created before until when until is not zero. A container
// started meanwhile is left alone. Anonymous volumes stay, as docker's.
func (s *Store) PruneContainers(until time.Time) (Pruned, error) {
	return s.PruneContainersMatching(func(c *Container) bool { return until.IsZero() || c.Created.Before(until) })
}

// PruneContainersMatching removes the stopped containers match accepts
// (docker's prune filters: until, label, label!); all when match is nil.
func (s *Store) PruneContainersMatching(match func(*Container) bool) (Pruned, error) {
	var res Pruned
	list, err := s.List()
	if err != nil {
		return res, err
	}
	var errs []error
	for _, c := range list {
		if c.State.Running || c.State.Restarting || (match != nil && !match(c)) {
			continue
		}
		size := cache.SpaceOnDisk(c.Dir)
		if err := s.Remove(c, false, false); err != nil {
			if !errors.Is(err, ErrRunning) {
				errs = append(errs, err)
			}
			continue
		}
		res.Removed = append(res.Removed, c.ID)
		res.Freed += size
	}
	errs = append(errs, s.releaseOrphanLeases())
	return res, errors.Join(errs...)
}

// PruneVolumes removes the volumes no container uses: the anonymous ones,
// or with all every one, as docker's volume prune [-a].
func (s *Store) PruneVolumes(all bool) (Pruned, error) {
	return s.PruneVolumesMatching(all, nil)
}

// PruneVolumesMatching is PruneVolumes of the volumes match accepts (all
// when match is nil).
func (s *Store) PruneVolumesMatching(all bool, match func(Volume) bool) (Pruned, error) {
	var res Pruned
	vols, err := s.Volumes()
	if err != nil {
		return res, err
	}
	used, err := s.usedVolumes()
	if err != nil {
		return res, err
	}
	var errs []error
	for _, v := range vols {
		if used[v.Name] || (!v.Anonymous && !all) || (match != nil && !match(v)) {
			continue
		}
		size := cache.SpaceOnDisk(filepath.Join(s.volumesDir(), v.Name))
		if err := s.RemoveVolume(v.Name); err != nil {
			if !errors.Is(err, ErrVolumeInUse) && !errors.Is(err, ErrNoSuchVolume) {
				errs = append(errs, err)
			}
			continue
		}
		res.Removed = append(res.Removed, v.Name)
		res.Freed += size
	}
	return res, errors.Join(errs...)
}

// usedVolumes are the names of the volumes some container mounts.
func (s *Store) usedVolumes() (map[string]bool, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, c := range list {
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				used[m.Name] = true
			}
		}
	}
	return used, nil
}

// Usage is what `system df` reports of containers and volumes.
type Usage struct {
	Containers, RunningContainers int
	ContainersSize                int64 // the writable layers (SizeRw)
	ContainersReclaimable         int64 // those of the containers that do not run
	Volumes, UsedVolumes          int
	VolumesSize                   int64 // DiskUsage of every volume
	VolumesReclaimable            int64 // of the volumes no container uses
	// Per object, for df -v.
	ContainerList []*Container
	ContainerSize map[string]int64 // ID -> SizeRw
	VolumeList    []Volume
	VolumeSize    map[string]int64 // name -> DiskUsage
	VolumeLinks   map[string]int   // name -> containers that use it
}

// DiskUsage measures the containers and volumes.
func (s *Store) DiskUsage() (Usage, error) {
	u := Usage{ContainerSize: map[string]int64{}, VolumeSize: map[string]int64{}, VolumeLinks: map[string]int{}}
	list, err := s.List()
	if err != nil {
		return u, err
	}
	u.ContainerList = list
	for _, c := range list {
		n := c.SizeRw()
		u.ContainerSize[c.ID] = n
		u.Containers++
		u.ContainersSize += n
		if c.State.Running || c.State.Restarting {
			u.RunningContainers++
		} else {
			u.ContainersReclaimable += n
		}
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				u.VolumeLinks[m.Name]++
			}
		}
	}
	vols, err := s.Volumes()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return u, err
	}
	u.VolumeList = vols
	for _, v := range vols {
		n := cache.SpaceOnDisk(filepath.Join(s.volumesDir(), v.Name))
		u.VolumeSize[v.Name] = n
		u.Volumes++
		u.VolumesSize += n
		if u.VolumeLinks[v.Name] > 0 {
			u.UsedVolumes++
		} else {
			u.VolumesReclaimable += n
		}
	}
	return u, nil
}
