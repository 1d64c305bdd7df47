package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/kiln-build/kiln/cache"
)

var (
	// ErrNoSuchVolume: no volume has that name.
	ErrNoSuchVolume = errors.New("no such volume")
	// ErrVolumeInUse: a container uses the volume.
	ErrVolumeInUse = errors.New("volume is in use")
)

var validVolumeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

// Volume is a local volume, shaped like docker's volume inspect.
type Volume struct {
	CreatedAt  time.Time         `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	// Anonymous volumes were made for a container, not by name.
	Anonymous bool `json:"-"`
}

type volumeMeta struct {
	CreatedAt time.Time
	Labels    map[string]string
	Anonymous bool
}

func (s *Store) volumesDir() string { return filepath.Join(s.root, "volumes") }

// CreateVolume creates the named volume (a random name when empty, then it
// is anonymous); creating one that exists returns it, like docker.
func (s *Store) CreateVolume(name string, labels map[string]string) (Volume, error) {
	anon := name == ""
	if anon {
		name = newID()
	} else if !validVolumeName().MatchString(name) {
		return Volume{}, fmt.Errorf("create volume %q: includes invalid characters for a local volume name, only %s are allowed", name, validVolumeName())
	}
	if v, err := s.Volume(name); err == nil {
		return v, nil
	}
	dir := filepath.Join(s.volumesDir(), name)
	if err := os.MkdirAll(s.volumesDir(), 0o701); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(s.volumesDir(), ".new-")
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if labels == nil {
		labels = map[string]string{}
	}
	meta := volumeMeta{CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Anonymous: anon}
	err = os.Mkdir(filepath.Join(tmp, "_data"), 0o755)
	if err == nil {
		err = writeJSONAtomic(filepath.Join(tmp, "meta.json"), meta)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		if v, verr := s.Volume(name); verr == nil {
			return v, nil // created concurrently
		}
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return s.Volume(name)
}

// Volume returns the named volume.
func (s *Store) Volume(name string) (Volume, error) {
	if !validVolumeName().MatchString(name) {
		return Volume{}, fmt.Errorf("get %s: %w", name, ErrNoSuchVolume)
	}
	dir := filepath.Join(s.volumesDir(), name)
	var meta volumeMeta
	if err := readJSON(filepath.Join(dir, "meta.json"), &meta); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Volume{}, fmt.Errorf("get %s: %w", name, ErrNoSuchVolume)
		}
		return Volume{}, err
	}
	return Volume{
		CreatedAt: meta.CreatedAt, Driver: "local", Labels: meta.Labels, Mountpoint: filepath.Join(dir, "_data"),
		Name: name, Options: nil, Scope: "local", Anonymous: meta.Anonymous,
	}, nil
}

// Volumes lists the volumes by name.
func (s *Store) Volumes() ([]Volume, error) {
	ents, err := os.ReadDir(s.volumesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range ents {
		if v, err := s.Volume(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// VolumeUsers lists the IDs of the containers that mount the volume.
func (s *Store) VolumeUsers(name string) ([]string, error) {
	cs, err := s.List()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range cs {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids, nil
}

// RemoveVolume removes a volume no container uses.
func (s *Store) RemoveVolume(name string) error {
	if _, err := s.Volume(name); err != nil {
		return err
	}
	users, err := s.VolumeUsers(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("remove %s: %w: [%s]", name, ErrVolumeInUse, users[0])
	}
	if err := s.trashVolume(name); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// trashVolume moves the volume's directory into the store's trash in one
// rename (a kill leaves the volume whole or gone, never half-deleted) and
// leaves its files, as large as its users made them, to the store's
// background deleter.
func (s *Store) trashVolume(name string) error {
	st, err := cache.Open(s.root)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Trash(filepath.Join(s.volumesDir(), name))
}

// removeAnonymousVolumes removes c's anonymous volumes that no other
// container uses.
func (s *Store) removeAnonymousVolumes(c *Container) {
	for _, m := range c.Mounts {
		if m.Type != "volume" {
			continue
		}
		v, err := s.Volume(m.Name)
		if err != nil || !v.Anonymous {
			continue
		}
		users, err := s.VolumeUsers(m.Name)
		if err != nil {
			continue
		}
		if len(users) == 0 || (len(users) == 1 && users[0] == c.ID) {
			s.trashVolume(m.Name)
		}
	}
}
