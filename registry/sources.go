package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
)

// maxSources is how many repositories are remembered per blob.
const maxSources = 8

// sources remembers which repositories hold which blobs (as docker's
// distribution metadata does), so that a push to another repository of the
// same registry mounts those blobs instead of uploading them. It lives in
// <store>/registry/sources.json; a stale entry only costs a mount attempt
// that the registry declines.
type sources struct {
	dir string
}

type sourcesFile struct {
	// Blobs maps a blob digest to repositories ("registry/repo") that have
	// it, most recent first.
	Blobs map[digest.Digest][]string `json:"blobs"`
}

func newSources(s *cache.Store) sources {
	return sources{dir: filepath.Join(s.Root(), "registry")}
}

func (so sources) read() (sourcesFile, error) {
	sf := sourcesFile{Blobs: map[digest.Digest][]string{}}
	data, err := os.ReadFile(filepath.Join(so.dir, "sources.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return sf, nil
	}
	if err != nil {
		return sf, fmt.Errorf("read blob sources: %w", err)
	}
	if err := json.Unmarshal(data, &sf); err != nil || sf.Blobs == nil {
		// Only an optimisation: start over rather than fail a transfer.
		return sourcesFile{Blobs: map[digest.Digest][]string{}}, nil
	}
	return sf, nil
}

// lookup returns, per blob, the repositories known to have it.
func (so sources) lookup() map[digest.Digest][]string {
	sf, err := so.read()
	if err != nil {
		return nil
	}
	return sf.Blobs
}

// record notes that repo has the blobs.
func (so sources) record(repo name.Repository, blobs []digest.Digest) error {
	if err := os.MkdirAll(so.dir, 0o700); err != nil {
		return fmt.Errorf("record blob sources: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(so.dir, "sources.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("record blob sources: %w", err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("record blob sources: %w", err)
	}
	sf, err := so.read()
	if err != nil {
		return err
	}
	r := repo.Name()
	for _, b := range blobs {
		list := slices.DeleteFunc(sf.Blobs[b], func(s string) bool { return s == r })
		list = append([]string{r}, list...)
		sf.Blobs[b] = list[:min(len(list), maxSources)]
	}
	data, err := json.Marshal(sf)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(so.dir, "sources.*.tmp")
	if err != nil {
		return fmt.Errorf("record blob sources: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(so.dir, "sources.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record blob sources: %w", err)
	}
	return nil
}

// mountSource picks a repository of dest's registry, other than dest, known
// to have the blob.
func mountSource(known []string, dest name.Repository, opts Options) (name.Repository, bool) {
	for _, k := range known {
		r, err := name.NewRepository(k, opts.nameOptions()...)
		if err != nil {
			continue
		}
		if r.RegistryStr() == dest.RegistryStr() && r.RepositoryStr() != dest.RepositoryStr() {
			return r, true
		}
	}
	return name.Repository{}, false
}
