package output

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/archive"
	"github.com/kiln-build/kiln/registry"
)

// Options are the settings of an export.
type Options struct {
	Annotations Annotations
	// Registry is how pushes reach their registries.
	Registry registry.Options
	// Stdout receives dest=- outputs.
	Stdout io.Writer
	// Progress receives one line per name pushed or file written.
	Progress io.Writer
	// Digest asks for Result.Manifest of a type=image output that does not
	// push (making the manifest compresses the image's new layers).
	Digest bool
	// Index tells Check that the build makes an image index (several
	// platforms); Export finds it out from the result.
	Index bool
}

// Result is what an export made.
type Result struct {
	// ID is the image config's digest, or the image index's (Index); empty
	// for local and tar.
	ID digest.Digest
	// Index marks the result of a multi-platform build: an image index,
	// which the export may have rebuilt (annotations) under a new ID.
	Index bool
	// Manifest is the image's manifest (an index: the index) as it was
	// pushed or saved; nil for local and tar, and for a single image of
	// type=image unless Options.Digest.
	Manifest *ocispec.Descriptor
	// Names are the image's names, normalized.
	Names []string
}

// Check refuses a spec the build cannot deliver before the build starts.
func Check(s Spec, o Options) error {
	if err := o.Annotations.check(s, o.Index); err != nil {
		return err
	}
	if o.Index && s.DockerMediaTypes && s.MakesImage() {
		return fmt.Errorf("output: oci-mediatypes=false: a multi-platform image is an OCI image index (docker media types are for one platform): %w", cache.ErrInvalid)
	}
	if !s.MakesImage() && len(o.Annotations.Manifest) > 0 {
		return fmt.Errorf("annotation %s: type=%s makes no image manifest to annotate: %w", firstKey(o.Annotations.Manifest), s.Type, cache.ErrInvalid)
	}
	if s.Push && len(s.Names) == 0 {
		return fmt.Errorf("push: no name to push to (give -t NAME or name=): %w", cache.ErrInvalid)
	}
	for _, n := range s.Names {
		if _, err := cache.NormalizeName(n); err != nil {
			return fmt.Errorf("name %q: %w", n, err)
		}
	}
	return nil
}

// Export delivers the image (or image index) id of the store as s says. A
// type=image or registry output expects the build to have tagged it
// already; an index rebuilt with annotations gets the names of s in its
// place (Result.ID).
func Export(ctx context.Context, st *cache.Store, id digest.Digest, s Spec, o Options) (Result, error) {
	o.Index = st.IsIndex(id)
	if err := Check(s, o); err != nil {
		return Result{}, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Index {
		return exportIndex(ctx, st, id, s, o) // index.go
	}
	switch s.Type {
	case Local:
		return Result{}, exportLocal(ctx, st, id, s.Dest)
	case Tar:
		return Result{}, exportTar(ctx, st, id, s.Dest, o.Stdout)
	}
	res := Result{ID: id, Names: normalizedNames(s.Names)}
	// Every manifest this export hands out carries exactly the requested
	// annotations (none: a previous build's are dropped). A type=image
	// output that nobody asks the digest of makes no manifest at all.
	if s.Type != Image || s.Push || o.Digest || len(o.Annotations.Manifest) > 0 {
		if err := annotateManifest(ctx, st, id, o.Annotations.Manifest); err != nil {
			return Result{}, err
		}
	}
	switch s.Type {
	case OCI, Docker:
		so := archive.SaveOptions{IndexAnnotations: o.Annotations.IndexDescriptor, DescriptorAnnotations: o.Annotations.ManifestDescriptor}
		if err := saveArchive(ctx, st, id, s, o, so); err != nil {
			return Result{}, err
		}
		return withManifest(ctx, st, res)
	}
	if !s.Push {
		if o.Digest {
			return withManifest(ctx, st, res)
		}
		return res, nil
	}
	format := registry.FormatOCI
	if s.DockerMediaTypes {
		format = registry.FormatDocker
	}
	m, err := push(ctx, st, id, s.Names, format, o)
	if err != nil {
		return Result{}, err
	}
	res.Manifest = m
	return res, nil
}

// normalizedNames are the output's names as the store records them.
func normalizedNames(names []string) []string {
	var out []string
	for _, n := range names {
		norm, _ := cache.NormalizeName(n)
		out = append(out, norm)
	}
	return out
}

// saveArchive writes the image or index id as an OCI layout or a
// docker-archive (type=oci, type=docker): a directory, stdout or a file.
func saveArchive(ctx context.Context, st *cache.Store, id digest.Digest, s Spec, o Options, so archive.SaveOptions) error {
	f := archive.FormatOCI
	if s.Type == Docker {
		f = archive.FormatDocker
	}
	images := []archive.Image{{ID: id, Names: s.Names}}
	switch {
	case s.Dir:
		return archive.SaveImagesDir(ctx, st, s.Dest, images, f, so)
	case s.Dest == "-":
		return archive.SaveImages(ctx, st, o.Stdout, images, f, so)
	}
	return archive.SaveImagesFile(ctx, st, s.Dest, images, f, so)
}

// push pushes the image or index id under every name and returns the
// manifest (or index) pushed last.
func push(ctx context.Context, st *cache.Store, id digest.Digest, names []string, format registry.Format, o Options) (*ocispec.Descriptor, error) {
	var last *ocispec.Descriptor
	for _, n := range names {
		pushed, err := registry.Push(ctx, st, id.String(), n, format, o.Registry)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Progress, "pushed %s: digest: %s size: %d\n", cache.FamiliarName(pushed.Name), pushed.Manifest.Digest, pushed.Manifest.Size)
		m := pushed.Manifest
		last = &m
	}
	return last, nil
}

// withManifest fills in the manifest the store has for the image.
func withManifest(ctx context.Context, st *cache.Store, res Result) (Result, error) {
	md, _, err := st.Manifest(ctx, res.ID)
	if err != nil {
		return Result{}, err
	}
	res.Manifest = &md
	return res, nil
}

// annotateManifest makes the store's manifest of the image carry exactly
// ann (the manifest the image is pushed and saved with from now on).
func annotateManifest(ctx context.Context, st *cache.Store, id digest.Digest, ann map[string]string) error {
	_, m, err := st.Manifest(ctx, id)
	if err != nil {
		return err
	}
	if maps.Equal(m.Annotations, ann) {
		return nil
	}
	m.Annotations = maps.Clone(ann)
	d, data, err := st.WriteJSON(ctx, m)
	if err != nil {
		return fmt.Errorf("annotate manifest: %w", err)
	}
	_, config, err := st.Image(id)
	if err != nil {
		return err
	}
	desc := ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(data))}
	if _, err := st.PutImage(ctx, config, cache.ImageOptions{Manifest: &desc}); err != nil {
		return fmt.Errorf("annotate manifest: %w", err)
	}
	return nil
}

// Metadata is the --metadata-file of a build with buildx's keys.
func Metadata(r Result) ([]byte, error) {
	m := map[string]any{}
	// As buildx: an index has no config (its digest is containerimage.digest).
	if r.ID != "" && !r.Index {
		m["containerimage.config.digest"] = r.ID
	}
	if r.Manifest != nil {
		m["containerimage.digest"] = r.Manifest.Digest
		m["containerimage.descriptor"] = ocispec.Descriptor{MediaType: r.Manifest.MediaType, Digest: r.Manifest.Digest, Size: r.Manifest.Size}
	}
	if len(r.Names) > 0 {
		names := ""
		for i, n := range r.Names {
			if i > 0 {
				names += ","
			}
			names += n
		}
		m["image.name"] = names
	}
	return json.MarshalIndent(m, "", "  ")
}
