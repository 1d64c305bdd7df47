package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

var (
	// ErrNoSuchContainer: no container has that ID, ID prefix or name.
	ErrNoSuchContainer = errors.New("no such container")
	// ErrNameInUse: another container has the name.
	ErrNameInUse = errors.New("container name already in use")
	// ErrRunning: the operation needs a stopped container.
	ErrRunning = errors.New("container is running")
	// ErrNotRunning: the operation needs a running container.
	ErrNotRunning = errors.New("container is not running")
)

// Store holds the containers of one kiln store root.
type Store struct {
	root string // the kiln store root
}

// NewStore returns the container store under the kiln store root.
func NewStore(root string) *Store { return &Store{root: root} }

func (s *Store) containersDir() string { return filepath.Join(s.root, "containers") }
func (s *Store) namesDir() string      { return filepath.Join(s.root, "container-names") }

// Create makes the container's directory from cfg (ID and Created are
// filled in; an empty Name gets a random one) with state "created". A taken
// name is an error wrapping ErrNameInUse and creates nothing.
func (s *Store) Create(cfg Config) (*Container, error) {
	if err := os.MkdirAll(s.containersDir(), 0o711); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := os.MkdirAll(s.namesDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	cfg.ID = newID()
	cfg.Created = time.Now().UTC()
	explicit := cfg.Name != ""
	if explicit && !validName().MatchString(cfg.Name) {
		return nil, fmt.Errorf("invalid container name (%s), only %s are allowed", cfg.Name, validName())
	}
	for i := 0; ; i++ {
		if !explicit {
			cfg.Name = randomName()
			if i > 5 {
				cfg.Name += strconv.Itoa(i)
			}
		}
		err := os.Symlink(cfg.ID, filepath.Join(s.namesDir(), cfg.Name))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create container: %w", err)
		}
		if explicit {
			other, _ := os.Readlink(filepath.Join(s.namesDir(), cfg.Name))
			return nil, fmt.Errorf("the container name \"/%s\" is already in use by container %q: %w", cfg.Name, other, ErrNameInUse)
		}
	}
	if cfg.Config.Hostname == "" {
		cfg.Config.Hostname = cfg.ID[:12]
	}
	c := &Container{Config: cfg, Dir: filepath.Join(s.containersDir(), cfg.ID)}
	c.State = State{Status: "created"}
	err := func() error {
		mps, err := s.ResolveMounts(cfg.HostConfig.Mounts, cfg.Config.Volumes)
		c.Mounts = mps
		if err != nil {
			return err
		}
		for _, m := range mps {
			if m.Type == "bind" {
				c.HostConfig.Binds = append(c.HostConfig.Binds, m.Source+":"+m.Destination+map[bool]string{true: "", false: ":ro"}[m.RW])
			}
		}
		// The upper directory's mode is the container's "/": 0755.
		for _, d := range []string{c.Dir, c.upper(), c.work(), c.rootfs()} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := os.Chmod(c.Dir, 0o710); err != nil {
			return err
		}
		if err := writeEtcFiles(c); err != nil {
			return err
		}
		if err := c.saveState(); err != nil {
			return err
		}
		// The lease before config.json: no container exists whose image
		// GC could take.
		if err := s.holdImage(cfg); err != nil {
			return err
		}
		// config.json last: its presence makes the container exist.
		return writeJSONAtomic(filepath.Join(c.Dir, "config.json"), c.Config)
	}()
	if err != nil {
		s.removeAnonymousVolumes(c)
		os.RemoveAll(c.Dir)
		os.Remove(filepath.Join(s.namesDir(), cfg.Name))
		s.releaseImage(cfg.ID)
		return nil, fmt.Errorf("create container: %w", err)
	}
	c.logEvent("create", nil)
	return c, nil
}

func (c *Container) upper() string  { return filepath.Join(c.Dir, "upper") }
func (c *Container) work() string   { return filepath.Join(c.Dir, "work") }
func (c *Container) rootfs() string { return filepath.Join(c.Dir, "rootfs") }

// LogPath is the container's log file.
func (c *Container) LogPath() string { return filepath.Join(c.Dir, c.ID+"-json.log") }

// UpperDir is the container's writable layer.
func (c *Container) UpperDir() string { return c.upper() }

// WorkDir is the overlay workdir of the writable layer.
func (c *Container) WorkDir() string { return c.work() }

// MergedDir is where the rootfs is mounted, inside the container's mount namespace.
func (c *Container) MergedDir() string { return c.rootfs() }

// load reads the container with the full id.
func (s *Store) load(id string) (*Container, error) {
	c := &Container{Dir: filepath.Join(s.containersDir(), id)}
	if err := readJSON(filepath.Join(c.Dir, "config.json"), &c.Config); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchContainer, id)
		}
		return nil, err
	}
	if err := c.Refresh(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchContainer, id)
		}
		return nil, err
	}
	return c, nil
}

// Get finds a container by full ID, name (with or without "/") or unique
// ID prefix, like docker.
func (s *Store) Get(ref string) (*Container, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchContainer, ref)
	}
	if len(ref) == 64 {
		if c, err := s.load(ref); err == nil {
			return c, nil
		}
	}
	if name := strings.TrimPrefix(ref, "/"); validName().MatchString(name) {
		if id, err := os.Readlink(filepath.Join(s.namesDir(), name)); err == nil {
			return s.load(id)
		}
	}
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNoSuchContainer, ref)
	case 1:
		return s.load(match[0])
	}
	return nil, fmt.Errorf("multiple IDs found with provided prefix: %s", ref)
}

func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.containersDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if len(e.Name()) == 64 && e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// List returns every container, newest first.
func (s *Store) List() ([]*Container, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, id := range ids {
		c, err := s.load(id)
		if errors.Is(err, ErrNoSuchContainer) {
			continue // removed meanwhile, or not fully created yet
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Remove deletes a container that is not running (with force, it is
// SIGKILLed first). Its anonymous volumes go too when volumes is true.
func (s *Store) Remove(c *Container, force, volumes bool) error {
	if err := c.Refresh(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if c.State.Running || c.State.Restarting {
		if !force {
			return fmt.Errorf("cannot remove container %s: %w: stop the container before attempting removal or force remove", c.ShortID(), ErrRunning)
		}
		// A --rm container's monitor removes it meanwhile (its state
		// goes with it): removeFiles then finds it gone.
		if err := c.Kill("SIGKILL"); err != nil && !errors.Is(err, ErrNotRunning) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := c.waitMonitor(30 * time.Second); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// Its monitor may still be releasing the network: whatever it has not
	// released yet goes now, so that nothing outlives rm.
	releaseNetwork(c)
	return s.removeFiles(c, volumes)
}

// removeFiles removes the container's directory and name. The directory
// goes to the store's trash in one rename, so that a half-removed
// container never looks valid, and its files (the writable layer) are
// deleted in the background.
func (s *Store) removeFiles(c *Container, volumes bool) error {
	finish, err := s.removeFilesLater(c, volumes)
	return errors.Join(err, finish())
}

// removeFilesLater is removeFiles but for the deletion of the files moved
// to the trash, which finish does (always to be called): once it returns,
// the container, its name, its anonymous volumes and its lease on the
// image are gone, which is what a `run --rm` waits for.
func (s *Store) removeFilesLater(c *Container, volumes bool) (finish func() error, err error) {
	finish = func() error { return nil }
	if volumes {
		s.removeAnonymousVolumes(c)
	}
	st, err := cache.Open(s.root)
	if err != nil {
		return finish, fmt.Errorf("remove container %s: %w", c.ShortID(), err)
	}
	if _, err := os.Lstat(c.Dir); errors.Is(err, fs.ErrNotExist) {
		// Removed meanwhile: its lease may be left.
		err := st.DeleteLease(cache.KindContainer, c.ID)
		st.Close()
		return finish, err
	}
	var errs []error
	del, err := st.TrashLater(c.Dir)
	if err != nil {
		if _, serr := os.Lstat(c.Dir); serr == nil {
			st.Close()
			return finish, fmt.Errorf("remove container %s: %w", c.ShortID(), err)
		}
		errs = append(errs, err)
		del = func() error { return nil }
	}
	finish = func() error {
		err := del()
		st.Close()
		if err != nil {
			return fmt.Errorf("remove container %s: %w", c.ShortID(), err)
		}
		return nil
	}
	if link, err := os.Readlink(filepath.Join(s.namesDir(), c.Name)); err == nil && link == c.ID {
		os.Remove(filepath.Join(s.namesDir(), c.Name))
	}
	c.logEvent("destroy", nil)
	// No container uses the image any more. A kill before this leaves a
	// lease without a container: releaseOrphanLeases gives it back.
	if err := st.DeleteLease(cache.KindContainer, c.ID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return finish, fmt.Errorf("remove container %s: %w", c.ShortID(), err)
	}
	return finish, nil
}

// releaseOrphanLeases releases the leases of containers whose directory is
// gone (rm killed halfway). A container being created has its directory
// before its lease, so it is never taken for an orphan.
func (s *Store) releaseOrphanLeases() error {
	st, err := cache.Open(s.root)
	if err != nil {
		return err
	}
	defer st.Close()
	ls, err := st.Leases()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range ls {
		if l.Kind != cache.KindContainer {
			continue
		}
		if _, err := os.Lstat(filepath.Join(s.containersDir(), l.Name)); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, st.DeleteLease(l.Kind, l.Name))
		}
	}
	return errors.Join(errs...)
}

// holdImage takes the container's lease on its image and layers in the
// store: GC keeps them from create to rm, even once the image is removed.
func (s *Store) holdImage(cfg Config) error {
	st, err := cache.Open(s.root)
	if err != nil {
		return err
	}
	defer st.Close()
	l := cache.Lease{Kind: cache.KindContainer, Name: cfg.ID, Layers: cfg.Layers}
	if cfg.Image != "" {
		l.Images = []digest.Digest{cfg.Image}
	}
	return st.PutLease(l)
}

// releaseImage releases the lease of container id.
func (s *Store) releaseImage(id string) error {
	st, err := cache.Open(s.root)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.DeleteLease(cache.KindContainer, id)
}
