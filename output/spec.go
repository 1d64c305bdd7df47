// Package output delivers what a build made, as buildx's exporters do
// (kiln build -o/--output, --push): into the store (type=image), pushed to
// a registry (type=registry, or type=image,push=true), saved as an OCI
// layout or a docker-archive (type=oci, type=docker: cache/archive, the code
// of kiln save), or as the final stage's files (type=local into a
// directory, type=tar as one tar).
package output

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// Type is an exporter's name, as buildx spells it.
type Type string

const (
	Image    Type = "image"    // into the store (the default); push=true also pushes
	Registry Type = "registry" // into the store and pushed: type=image,push=true
	Local    Type = "local"    // the final stage's files into a directory
	Tar      Type = "tar"      // the final stage's files as one tar
	OCI      Type = "oci"      // an OCI image layout, as a tar (or a directory with tar=false)
	Docker   Type = "docker"   // a docker-archive that docker load reads
)

// Spec is one --output.
type Spec struct {
	Type Type
	// Dest is the file or directory to write; "-" is stdout (tar, oci, docker).
	Dest string
	// Names are the image's names (name=, else the build's -t).
	Names []string
	// Push sends the image to the registry of each name.
	Push bool
	// Dir writes an OCI layout as a directory (type=oci,tar=false).
	Dir bool
	// Compression, when set, compresses the image's own layers (compression=).
	Compression layer.Compression
	// DockerMediaTypes pushes docker's media types (oci-mediatypes=false).
	DockerMediaTypes bool
}

// MakesImage reports whether the output is an image (it has names, a
// manifest, an ID): every type but local and tar.
func (s Spec) MakesImage() bool { return s.Type != Local && s.Type != Tar }

// StoresImage reports whether the output tags the image in the store.
func (s Spec) StoresImage() bool { return s.Type == Image || s.Type == Registry }

// Parse reads an --output value as buildx does: "type=local,dest=out" (CSV
// of key=value), or the shorthands "-" (type=tar to stdout) and "DIR"
// (type=local). Options an exporter does not know are refused.
func Parse(v string) (Spec, error) {
	switch v {
	case "-":
		return Spec{Type: Tar, Dest: "-"}, nil
	case "":
		return Spec{}, fmt.Errorf("output: empty value: %w", cache.ErrInvalid)
	}
	if !strings.Contains(v, "=") {
		return Spec{Type: Local, Dest: v}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return Spec{}, fmt.Errorf("output %q: %v: %w", v, err, cache.ErrInvalid)
	}
	var s Spec
	opts := map[string]string{}
	for _, f := range fields {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return Spec{}, fmt.Errorf("output %q: %q is not key=value: %w", v, f, cache.ErrInvalid)
		}
		k = strings.ToLower(k)
		if k == "type" {
			s.Type = Type(val)
			continue
		}
		opts[k] = val
	}
	switch s.Type {
	case Image, Registry, Local, Tar, OCI, Docker:
	case "":
		return Spec{}, fmt.Errorf("output %q: no type= (image, registry, local, tar, oci or docker): %w", v, cache.ErrInvalid)
	default:
		return Spec{}, fmt.Errorf("output %q: type %q not supported (image, registry, local, tar, oci or docker): %w", v, s.Type, cache.ErrInvalid)
	}
	bad := func(k string) error {
		return fmt.Errorf("output %q: type=%s has no option %q: %w", v, s.Type, k, cache.ErrInvalid)
	}
	boolOpt := func(k, val string) (bool, error) {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return false, fmt.Errorf("output %q: %s=%q: want true or false: %w", v, k, val, cache.ErrInvalid)
		}
		return b, nil
	}
	if s.Type == Registry {
		s.Push = true
	}
	for k, val := range opts {
		switch {
		case k == "dest" && s.Type != Image && s.Type != Registry:
			s.Dest = val
		case k == "name" && s.MakesImage():
			for _, n := range strings.Split(val, ",") {
				if n = strings.TrimSpace(n); n != "" {
					s.Names = append(s.Names, n)
				}
			}
		case k == "push" && (s.Type == Image || s.Type == Registry):
			if s.Push, err = boolOpt(k, val); err != nil {
				return Spec{}, err
			}
		case k == "tar" && s.Type == OCI:
			t, err := boolOpt(k, val)
			if err != nil {
				return Spec{}, err
			}
			s.Dir = !t
		case k == "compression" && s.MakesImage():
			if s.Compression, err = layer.ParseCompression(val); err != nil {
				return Spec{}, fmt.Errorf("output %q: %w", v, err)
			}
		case k == "oci-mediatypes" && s.MakesImage():
			oci, err := boolOpt(k, val)
			if err != nil {
				return Spec{}, err
			}
			s.DockerMediaTypes = !oci
		default:
			return Spec{}, bad(k)
		}
	}
	switch {
	case (s.Type == Local || s.Type == OCI || s.Type == Docker || s.Type == Tar) && s.Dest == "":
		return Spec{}, fmt.Errorf("output %q: type=%s needs dest=: %w", v, s.Type, cache.ErrInvalid)
	case s.Type == Local && s.Dest == "-":
		return Spec{}, fmt.Errorf("output %q: type=local writes a directory, not stdout (use type=tar,dest=-): %w", v, cache.ErrInvalid)
	case s.Dir && s.Dest == "-":
		return Spec{}, fmt.Errorf("output %q: tar=false writes a directory, not stdout: %w", v, cache.ErrInvalid)
	case s.DockerMediaTypes && s.Compression == layer.Zstd:
		return Spec{}, fmt.Errorf("output %q: docker media types have no zstd layers (use oci-mediatypes=true): %w", v, cache.ErrInvalid)
	}
	return s, nil
}
