package archive

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// saveTarget is an image to save with the names it is saved under.
type saveTarget struct {
	id    digest.Digest
	names []string // normalized, tagged
	index bool     // id is an index (a multi-platform image)
}

// resolveTargets finds the images the user named, as docker save does: a
// name[:tag] saves the image under that name, a repository without a tag every
// tagged image of that repository, an image ID the image without a name. The
// result is in the order of first mention, one entry per image.
func resolveTargets(s *cache.Store, args []string) ([]*saveTarget, error) {
	refs, err := s.References()
	if err != nil {
		return nil, err
	}
	var out []*saveTarget
	byID := map[digest.Digest]*saveTarget{}
	add := func(id digest.Digest, name string) {
		t := byID[id]
		if t == nil {
			t = &saveTarget{id: id, index: s.IsIndex(id)}
			byID[id] = t
			out = append(out, t)
		}
		if name != "" && !slices.Contains(t.names, name) {
			t.names = append(t.names, name)
		}
	}
	for _, arg := range args {
		if repo, err := cache.ParseReference(arg); err == nil && repo.NameOnly() {
			var tags []string
			for n := range refs {
				if r, err := cache.ParseReference(n); err == nil && r.Name() == repo.Name() && r.Tag() != "" {
					tags = append(tags, n)
				}
			}
			sort.Strings(tags)
			for _, n := range tags {
				add(refs[n], n)
			}
			if len(tags) > 0 {
				continue
			}
		}
		id, _, err := s.ResolveTarget(arg)
		if err != nil {
			return nil, err
		}
		name := ""
		if n, err := cache.NormalizeName(arg); err == nil && refs[n] == id && isTagged(n) {
			name = n
		}
		add(id, name)
	}
	return out, nil
}

// repoAndTag splits a normalized tagged name into its familiar repository
// ("bb", "example.com/x/y") and its tag.
func repoAndTag(name string) (repo, tag string, ok bool) {
	ref, err := cache.ParseReference(name)
	if err != nil || ref.Tag() == "" {
		return "", "", false
	}
	return ref.FamiliarName(), ref.Tag(), true
}

func isTagged(name string) bool {
	_, _, ok := repoAndTag(name)
	return ok
}

// ociNames returns the normalized names an OCI index descriptor gives its
// image: io.containerd.image.name when present, else
// org.opencontainers.image.ref.name when it is a full reference. A bare tag
// there ("latest", as docker and containerd write it beside the full name)
// names no repository, so it names nothing by itself.
func ociNames(d ocispec.Descriptor) ([]string, error) {
	if n := d.Annotations[annotationImageName]; n != "" {
		norm, err := cache.NormalizeName(n)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", annotationImageName, err)
		}
		return []string{norm}, nil
	}
	if n := d.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(n, ":/@") {
		if norm, err := cache.NormalizeName(n); err == nil {
			return []string{norm}, nil
		}
	}
	return nil, nil
}

// dockerNames normalizes the RepoTags of a manifest.json entry.
func dockerNames(repoTags []string) ([]string, error) {
	var names []string
	for _, t := range repoTags {
		norm, err := cache.NormalizeName(t)
		if err != nil {
			return nil, fmt.Errorf("RepoTags: %w", err)
		}
		if !slices.Contains(names, norm) {
			names = append(names, norm)
		}
	}
	return names, nil
}
