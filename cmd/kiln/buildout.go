package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/archive"
	"github.com/kiln-build/kiln/output"
	"github.com/kiln-build/kiln/registry"
)

// buildIO are kiln build's flags for what goes in (stdin or Git contexts,
// --build-context, --label, --add-host) and what comes out (-o, --push,
// --iidfile, --metadata-file, --annotation), as buildx's.
type buildIO struct {
	outputs      []string
	push         bool
	iidFile      string
	metadataFile string
	labels       []string
	annotations  []string
	contexts     []string
	hosts        []string

	specs   []output.Spec
	ann     output.Annotations
	context *builder.Context
	result  output.Result
	made    bool // an output made an image the result describes
	// final is the build's result after the outputs: a multi-platform
	// build's index rebuilt with annotations has a new ID.
	final digest.Digest
}

func (b *buildIO) add(f *pflag.FlagSet) {
	f.StringArrayVarP(&b.outputs, "output", "o", nil, "output destination: type=image|registry|local|tar|oci|docker[,dest=PATH][,name=NAME][,push=true][,tar=false][,compression=gzip|zstd][,oci-mediatypes=true|false]; DIR is type=local, - is type=tar to stdout")
	f.BoolVar(&b.push, "push", false, "push the image to the registry of each -t (shorthand for --output=type=registry)")
	f.StringVar(&b.iidFile, "iidfile", "", "write the image ID to the file")
	f.StringVar(&b.metadataFile, "metadata-file", "", "write build result metadata (containerimage.digest, containerimage.config.digest, image.name, ...) to the file, as JSON")
	f.StringArrayVar(&b.labels, "label", nil, "set metadata for the image (KEY=VALUE)")
	f.StringArrayVar(&b.annotations, "annotation", nil, "add an annotation to the image manifest ([manifest:|manifest-descriptor:|index:|index-descriptor:]KEY=VALUE; index: needs a multi-platform build)")
	f.StringArrayVar(&b.contexts, "build-context", nil, "additional build context: NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]|target:STAGE")
	f.StringArrayVar(&b.hosts, "add-host", nil, "add a custom host-to-IP mapping to RUN steps' /etc/hosts (NAME:IP)")
}

// setup turns the flags into opts: the context made ready, the outputs
// checked before anything is built. Close the returned context when done.
func (b *buildIO) setup(ctx context.Context, s *cache.Store, opts *builder.Options, arg string, ro registry.Options) error {
	var err error
	if opts.Labels, err = builder.ParseLabels(b.labels); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	for _, h := range b.hosts {
		e, err := builder.ParseHost(h)
		if err != nil {
			return fmt.Errorf("--add-host: %w", err)
		}
		opts.ExtraHosts = append(opts.ExtraHosts, e)
	}
	for _, v := range b.contexts {
		name, nc, layout, err := builder.ParseNamedContext(v)
		if err != nil {
			return fmt.Errorf("--build-context: %w", err)
		}
		if layout != "" {
			if nc.ImageID, err = loadLayoutContext(ctx, s, layout); err != nil {
				return fmt.Errorf("--build-context %s: %w", name, err)
			}
		}
		if opts.Contexts == nil {
			opts.Contexts = map[string]builder.NamedContext{}
		}
		opts.Contexts[name] = nc
	}
	if b.ann, err = output.ParseAnnotations(b.annotations); err != nil {
		return fmt.Errorf("--annotation: %w", err)
	}
	if err := b.parseOutputs(opts.Tags); err != nil {
		return err
	}
	// The image is tagged in the store only by outputs that store it.
	tags := opts.Tags
	opts.Tags = nil
	for _, sp := range b.specs {
		if sp.StoresImage() {
			for _, n := range sp.Names {
				if !slices.Contains(opts.Tags, n) {
					opts.Tags = append(opts.Tags, n)
				}
			}
		}
		if sp.Compression != "" {
			opts.Compression = sp.Compression
		}
	}
	if len(tags) > 0 && !slices.ContainsFunc(b.specs, output.Spec.MakesImage) {
		return fmt.Errorf("--tag: the output (type=%s) makes no image to name", b.specs[0].Type)
	}
	if (b.iidFile != "") && !slices.ContainsFunc(b.specs, output.Spec.MakesImage) {
		return fmt.Errorf("--iidfile: the output (type=%s) makes no image", b.specs[0].Type)
	}
	oo := output.Options{Annotations: b.ann, Registry: ro, Digest: b.metadataFile != "", Index: len(opts.Platforms) > 1}
	for _, sp := range b.specs {
		if err := output.Check(sp, oo); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	opts.Export = func(ctx context.Context, st *cache.Store, id digest.Digest, log io.Writer) error {
		oo.Progress = log
		// An index's outputs rebuild it (annotations): the next output
		// starts from the one before's, the same when nothing changes.
		cur := id
		for _, sp := range b.specs {
			r, err := output.Export(ctx, st, cur, sp, oo)
			if err != nil {
				return err
			}
			if sp.MakesImage() {
				b.result, b.made = r, true
			}
			if r.Index {
				cur = r.ID
			}
		}
		b.final = cur
		if cur != id {
			// The index the build made before the annotations.
			if err := output.RemoveUnnamed(st, id); err != nil {
				return fmt.Errorf("remove the unannotated index from the store: %w", err)
			}
		}
		// As buildx, an image sent elsewhere is not left in the store
		// (its layers stay, as build cache).
		if !slices.ContainsFunc(b.specs, output.Spec.StoresImage) {
			if err := output.RemoveUnnamed(st, cur); err != nil {
				return fmt.Errorf("remove the image from the store: %w", err)
			}
		}
		return nil
	}
	c, err := builder.OpenContext(ctx, arg, builder.ContextOptions{Dockerfile: opts.Dockerfile, Stdin: opts.Stdin, TempDir: s.TempDir})
	if err != nil {
		return err
	}
	b.context = c
	opts.ContextDir, opts.TemporaryContext = c.Dir, c.Temporary()
	if c.Dockerfile != nil {
		opts.Dockerfile, opts.Stdin = "-", bytes.NewReader(c.Dockerfile)
	}
	return nil
}

// parseOutputs reads -o and --push; without them the image goes into the
// store under the -t names.
func (b *buildIO) parseOutputs(tags []string) error {
	for _, v := range b.outputs {
		sp, err := output.Parse(v)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		b.specs = append(b.specs, sp)
	}
	if b.push {
		switch {
		case len(b.specs) == 0:
			b.specs = []output.Spec{{Type: output.Registry, Push: true}}
		case len(b.specs) == 1 && (b.specs[0].Type == output.Image || b.specs[0].Type == output.Registry):
			b.specs[0].Push = true
		default:
			return fmt.Errorf("--push: pushes an image output; with -o type=%s, drop --push or use -o type=registry", b.specs[0].Type)
		}
	}
	if len(b.specs) == 0 {
		b.specs = []output.Spec{{Type: output.Image}}
	}
	stdout := 0
	for i := range b.specs {
		if b.specs[i].MakesImage() && len(b.specs[i].Names) == 0 {
			b.specs[i].Names = slices.Clone(tags)
		}
		if b.specs[i].Dest == "-" {
			stdout++
		}
	}
	if stdout > 1 {
		return fmt.Errorf("--output: only one output can go to stdout")
	}
	return nil
}

// stdoutTaken reports whether an output writes to stdout (then -q prints no ID).
func (b *buildIO) stdoutTaken() bool {
	return slices.ContainsFunc(b.specs, func(s output.Spec) bool { return s.Dest == "-" })
}

// finalID is the build's result id after the outputs (an index rebuilt
// with annotations has a new one).
func (b *buildIO) finalID(id digest.Digest) digest.Digest {
	if b.final != "" {
		return b.final
	}
	return id
}

// finish writes --iidfile and --metadata-file once the build succeeded.
func (b *buildIO) finish(id digest.Digest) error {
	if b.iidFile != "" {
		if err := os.WriteFile(b.iidFile, []byte(id), 0o644); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if b.metadataFile != "" {
		r := b.result
		if !b.made {
			r = output.Result{}
		}
		data, err := output.Metadata(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.metadataFile, data, 0o644); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	return nil
}

// close removes what setup made (a context from stdin or Git).
func (b *buildIO) close() {
	if b.context != nil {
		b.context.Close()
	}
}

// loadLayoutContext loads the image of an OCI layout directory
// (oci-layout://DIR[:TAG]) into the store, unnamed, for a named context.
func loadLayoutContext(ctx context.Context, s *cache.Store, layout string) (digest.Digest, error) {
	dir, tag := layout, ""
	if i := strings.LastIndex(layout, ":"); i > strings.LastIndex(layout, "/") {
		dir, tag = layout[:i], layout[i+1:]
	}
	return archive.LoadLayoutImage(ctx, s, dir, tag)
}
