package output

import (
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/cache"
)

// Annotations are the --annotation values by where buildx puts them.
type Annotations struct {
	Manifest           map[string]string // "KEY=V" or "manifest:KEY=V": the image manifest
	ManifestDescriptor map[string]string // "manifest-descriptor:KEY=V": the manifest's descriptor in an OCI layout's index.json
	Index              map[string]string // "index:KEY=V": the image index
	IndexDescriptor    map[string]string // "index-descriptor:KEY=V": index.json of an OCI layout
}

// ParseAnnotations reads --annotation values: KEY=VALUE, optionally prefixed
// with where it goes (manifest:, manifest-descriptor:, index:,
// index-descriptor:, or several joined by commas, as buildx). A platform
// selector (manifest[linux/amd64]:) is refused: not supported yet.
func ParseAnnotations(list []string) (Annotations, error) {
	var a Annotations
	set := func(m *map[string]string, k, v string) {
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	}
	for _, s := range list {
		kv, val, ok := strings.Cut(s, "=")
		if !ok || kv == "" {
			return a, fmt.Errorf("annotation %q: want [TYPE:]KEY=VALUE: %w", s, cache.ErrInvalid)
		}
		types, key := "manifest", kv
		// A key may hold colons (org.example:x), a type list never holds dots.
		if t, k, ok := strings.Cut(kv, ":"); ok && !strings.Contains(t, ".") {
			types, key = t, k
		}
		if key == "" {
			return a, fmt.Errorf("annotation %q: no key: %w", s, cache.ErrInvalid)
		}
		for _, t := range strings.Split(types, ",") {
			switch t {
			case "manifest":
				set(&a.Manifest, key, val)
			case "manifest-descriptor":
				set(&a.ManifestDescriptor, key, val)
			case "index":
				set(&a.Index, key, val)
			case "index-descriptor":
				set(&a.IndexDescriptor, key, val)
			default:
				if strings.Contains(t, "[") {
					return a, fmt.Errorf("annotation %q: platform selectors are not supported (the annotation goes to every platform without one): %w", s, cache.ErrInvalid)
				}
				return a, fmt.Errorf("annotation %q: type %q (want manifest, manifest-descriptor, index or index-descriptor): %w", s, t, cache.ErrInvalid)
			}
		}
	}
	return a, nil
}

// check refuses the annotations an output cannot carry, as BuildKit: index
// annotations need an image index, which only a multi-platform build
// (index) makes. Descriptor annotations go on descriptors: those of an
// image index (manifest-descriptor, of a multi-platform build) or of an OCI
// layout's index.json (type=oci and docker).
func (a Annotations) check(s Spec, index bool) error {
	if len(a.Index) > 0 && !index {
		return fmt.Errorf("annotation index:%s: index annotations need an image index, and a one-platform build makes a single manifest (as BuildKit: not supported for single platform export): %w", firstKey(a.Index), cache.ErrInvalid)
	}
	layout := s.Type == OCI || s.Type == Docker
	if len(a.ManifestDescriptor) > 0 && !layout && !index {
		return fmt.Errorf("annotation manifest-descriptor:%s: descriptor annotations go into an image index or an OCI layout's index.json: a one-platform build has neither but with type=oci and type=docker outputs: %w", firstKey(a.ManifestDescriptor), cache.ErrInvalid)
	}
	if len(a.IndexDescriptor) > 0 && !layout {
		return fmt.Errorf("annotation index-descriptor:%s: descriptor annotations go into an OCI layout's index.json: only type=oci and type=docker outputs have one: %w", firstKey(a.IndexDescriptor), cache.ErrInvalid)
	}
	if !s.MakesImage() && (len(a.Index) > 0 || len(a.ManifestDescriptor) > 0) {
		m, what := a.Index, "index"
		if len(m) == 0 {
			m, what = a.ManifestDescriptor, "manifest-descriptor"
		}
		return fmt.Errorf("annotation %s:%s: type=%s makes no image index to annotate: %w", what, firstKey(m), s.Type, cache.ErrInvalid)
	}
	return nil
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
