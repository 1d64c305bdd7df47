package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// NormalizeName turns a user's image name into the store's reference form, as
// docker does: "busybox" → "docker.io/library/busybox:latest".
func NormalizeName(name string) (string, error) {
	ref, err := ParseReference(name)
	if err != nil {
		return "", fmt.Errorf("invalid reference format %q: %w", name, ErrInvalid)
	}
	return ref.WithDefaultTag().String(), nil
}

// FamiliarName is the short form of a normalized name, as docker prints it.
func FamiliarName(name string) string {
	ref, err := ParseReference(name)
	if err != nil {
		return name
	}
	return ref.FamiliarString()
}

type refsFile struct {
	Refs map[string]digest.Digest `json:"refs"`
}

func (s *Store) readRefs() (map[string]digest.Digest, error) {
	data, err := os.ReadFile(s.path("refs.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]digest.Digest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read references: %w", err)
	}
	var rf refsFile
	if err := json.Unmarshal(data, &rf); err != nil {
		return nil, fmt.Errorf("read references: %s: %w", s.path("refs.json"), ErrInvalid)
	}
	if rf.Refs == nil {
		rf.Refs = map[string]digest.Digest{}
	}
	return rf.Refs, nil
}

// updateRefs applies fn to the references under an exclusive lock and writes
// the result atomically.
func (s *Store) updateRefs(fn func(refs map[string]digest.Digest) error) error {
	lf, err := os.OpenFile(s.path("refs.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return err
	}
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	if err := fn(refs); err != nil {
		return err
	}
	data, err := json.MarshalIndent(refsFile{Refs: refs}, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.path("refs.json"), data)
}

// Tag points name at the image id. The image must be in the store.
func (s *Store) Tag(name string, id digest.Digest) error {
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	if !s.isImage(id) && !s.IsIndex(id) {
		return imageNotFound(id)
	}
	return s.updateRefs(func(refs map[string]digest.Digest) error {
		refs[n] = id
		return nil
	})
}

// Untag removes name and returns the image it pointed at.
func (s *Store) Untag(name string) (digest.Digest, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return "", err
	}
	var id digest.Digest
	err = s.updateRefs(func(refs map[string]digest.Digest) error {
		var ok bool
		if id, ok = refs[n]; !ok {
			return imageNotFound(name)
		}
		delete(refs, n)
		return nil
	})
	return id, err
}

// References returns every name with the image it points at.
func (s *Store) References() (map[string]digest.Digest, error) { return s.readRefs() }

// NamesOf returns the sorted names pointing at id.
func (s *Store) NamesOf(id digest.Digest) ([]string, error) {
	refs, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	var names []string
	for n, d := range refs {
		if d == id {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Resolve finds the image a user means: a name[:tag], a name@sha256:… the
// image was pulled or pushed as, a full image ID ("sha256:…" or its hex) or
// a unique prefix of an ID's hex of at least 4 characters. A name or ID of
// an index (a multi-platform image) gives its image for the host's platform
// (ResolveTarget keeps the index).
func (s *Store) Resolve(nameOrID string) (digest.Digest, error) {
	d, isIndex, err := s.ResolveTarget(nameOrID)
	if err != nil || !isIndex {
		return d, err
	}
	return s.indexImage(nameOrID, d, HostPlatform())
}

// resolveImage is Resolve of images only: a name pointing at an index is
// not found.
func (s *Store) resolveImage(nameOrID string) (digest.Digest, error) {
	if d, err := digest.Parse(nameOrID); err == nil {
		if s.isImage(d) {
			return d, nil
		}
		return "", imageNotFound(nameOrID)
	}
	refs, err := s.readRefs()
	if err != nil {
		return "", err
	}
	if n, err := NormalizeName(nameOrID); err == nil {
		if d, ok := refs[n]; ok && !s.IsIndex(d) {
			return d, nil
		}
		if strings.Contains(n, "@") {
			if d, ok := s.byRepoDigest(n); ok {
				return d, nil
			}
		}
	}
	if hex := strings.TrimPrefix(nameOrID, "sha256:"); len(hex) >= 4 && isHex(hex) {
		ids, err := s.ImageIDs()
		if err != nil {
			return "", err
		}
		var found []digest.Digest
		for _, id := range ids {
			if strings.HasPrefix(id.Encoded(), hex) {
				found = append(found, id)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return "", fmt.Errorf("image ID prefix %s is ambiguous: %w", nameOrID, ErrInvalid)
		}
	}
	return "", imageNotFound(nameOrID)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
