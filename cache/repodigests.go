package cache

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// AddRepoDigest records that a registry serves the image as ref
// ("repository@sha256:…", the digest of the manifest or index the
// repository has): pull and push call it, inspect shows it as RepoDigests
// and Resolve finds the image by it. A repository keeps every digest it
// was seen with, as docker's.
func (s *Store) AddRepoDigest(id digest.Digest, ref string) error {
	named, err := ParseReference(ref)
	if err != nil {
		return fmt.Errorf("repository digest %q: %v: %w", ref, err, ErrInvalid)
	}
	if named.Digest() == "" {
		return fmt.Errorf("repository digest %q: no digest: %w", ref, ErrInvalid)
	}
	canon := named.Name() + "@" + named.Digest().String()
	// Image records are rewritten whole: take the references' lock so two
	// processes adding digests do not lose one.
	lf, err := os.OpenFile(s.path("refs.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return err
	}
	rec, err := s.imageRecord(id)
	if err != nil {
		return err
	}
	if slices.Contains(rec.RepoDigests, canon) {
		return nil
	}
	rec.RepoDigests = append(rec.RepoDigests, canon)
	slices.Sort(rec.RepoDigests)
	return s.writeImageRecord(id, rec)
}

// RepoDigests returns the image's "repository@sha256:…" names, normalized
// and sorted: those recorded by pull and push, and digest references
// (an image pulled by digest).
func (s *Store) RepoDigests(id digest.Digest) ([]string, error) {
	rec, err := s.imageRecord(id)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(rec.RepoDigests)
	names, err := s.NamesOf(id)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if strings.Contains(n, "@") && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// byRepoDigest finds the image recorded under the normalized
// "repository@sha256:…" name.
func (s *Store) byRepoDigest(name string) (digest.Digest, bool) {
	ids, err := s.ImageIDs()
	if err != nil {
		return "", false
	}
	for _, id := range ids {
		if rec, err := s.imageRecord(id); err == nil && slices.Contains(rec.RepoDigests, name) {
			return id, true
		}
	}
	return "", false
}
