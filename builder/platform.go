package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// A multi-platform build (Options.Platforms with several platforms) is one
// build per target platform, run side by side over the same store. They
// share the RUN sandboxes' set-up, the context's stat cache and the build
// cache: a step two platforms have in common (a stage FROM
// --platform=$BUILDPLATFORM that does not use TARGET* args) has one key, is
// made by the first build that reaches it while the others wait, and is a
// cache hit for them. The result is an OCI index of the images, in the
// order of Options.Platforms.

// platformShared is what the builds of a multi-platform build share.
type platformShared struct {
	parent *build
	mu     sync.Mutex
	// inflight are the steps being made, by key: another build wanting the
	// same step waits for it.
	inflight map[digest.Digest]chan struct{}
	// made are the keys made by this build: a hit even with --no-cache.
	made map[digest.Digest]bool
}

// target is the platform the build makes its image for.
func (b *build) target() ocispec.Platform {
	if b.platform != nil {
		return *b.platform
	}
	return hostPlatform()
}

// sb is the sandbox set-up of the build, shared by the builds of a
// multi-platform build.
func (b *build) sb() *sandboxes {
	if b.shared != nil {
		return &b.shared.parent.sandboxes
	}
	return &b.sandboxes
}

// claim waits while another platform's build makes the step of this key,
// and returns the function that ends this build's claim on it.
func (b *build) claim(key digest.Digest) func() {
	sh := b.shared
	if sh == nil || key == "" {
		return func() {}
	}
	for {
		sh.mu.Lock()
		ch, busy := sh.inflight[key]
		if !busy {
			ch = make(chan struct{})
			sh.inflight[key] = ch
			sh.mu.Unlock()
			return func() {
				sh.mu.Lock()
				delete(sh.inflight, key)
				sh.made[key] = true
				sh.mu.Unlock()
				close(ch)
			}
		}
		sh.mu.Unlock()
		<-ch
	}
}

// madeHere reports whether another platform's build of this build made the
// step of this key (a hit even with --no-cache).
func (b *build) madeHere(key digest.Digest) bool {
	if b.shared == nil {
		return false
	}
	b.shared.mu.Lock()
	defer b.shared.mu.Unlock()
	return b.shared.made[key]
}

// runPlatforms builds the image of each target platform (one platform: the
// image itself, as BuildKit) and returns the ID of the image or index.
func (b *build) runPlatforms(ctx context.Context) (digest.Digest, error) {
	platforms := b.opts.Platforms
	if len(platforms) == 0 {
		return b.run(ctx)
	}
	if len(platforms) == 1 {
		b.platform = &platforms[0]
		return b.run(ctx)
	}
	sh := &platformShared{parent: b, inflight: map[digest.Digest]chan struct{}{}, made: map[digest.Digest]bool{}}
	builds := make([]*build, len(platforms))
	for i := range platforms {
		df, err := parseDockerfile(b.df.name, b.data)
		if err != nil {
			return "", err
		}
		opts := b.opts
		prefix := "[" + cache.FormatPlatform(platforms[i]) + "] "
		if opts.ExplainCache != nil {
			opts.ExplainCache = &prefixWriter{w: b.opts.ExplainCache, prefix: prefix}
		}
		builds[i] = &build{store: b.store, opts: opts, rep: &reporter{w: b.rep.w, prefix: prefix}, df: df, data: b.data, start: b.start,
			stats: b.statCache(), ignore: b.ignore, platform: &platforms[i], shared: sh}
	}
	ids := make([]digest.Digest, len(platforms))
	errs := make([]error, len(platforms))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i, pb := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = pb.run(ctx)
			if errs[i] != nil {
				cancel(errs[i])
			}
		}()
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		for i, err := range errs {
			if err == cause {
				return "", fmt.Errorf("%s: %w", cache.FormatPlatform(platforms[i]), err)
			}
		}
		return "", cause
	}
	var images []cache.IndexImage
	for i, pb := range builds {
		if w, ok := pb.opts.ExplainCache.(*prefixWriter); ok {
			w.Flush()
		}
		b.used = append(b.used, pb.used...)
		p := platforms[i]
		images = append(images, cache.IndexImage{Image: ids[i], Manifest: ocispec.Descriptor{Platform: &p}})
	}
	b.export = b.rep.start("", "exporting to image index")
	started := time.Now()
	id, err := b.store.PutIndex(ctx, images, nil)
	if err != nil {
		return "", err
	}
	b.export.status("writing image index "+id.String(), started)
	return id, nil
}

// prefixWriter writes each line with a prefix (the platform of a
// multi-platform build), whole lines at a time.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.buf[:i+1]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes a last unterminated line.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.buf = nil
	}
}

// stagePlatform is the platform of a stage: FROM --platform's, else the
// build's target.
func (b *build) stagePlatform(meta *stage, flag string, line int) (ocispec.Platform, error) {
	if flag == "" {
		return b.target(), nil
	}
	s, err := meta.expand(flag)
	if err != nil {
		return ocispec.Platform{}, b.errorf(line, "FROM --platform=%s: %v", flag, err)
	}
	p, err := cache.ParsePlatform(s)
	if err != nil {
		return ocispec.Platform{}, b.errorf(line, "FROM --platform=%s: %v", flag, err)
	}
	return p, nil
}

// platformArgs are the values of the automatic platform ARGs, as BuildKit
// defines them: TARGET* of the target platform, BUILD* of the host's.
func platformArgs(target, build ocispec.Platform) [][2]string {
	return [][2]string{
		{"TARGETPLATFORM", cache.FormatPlatform(target)}, {"TARGETOS", target.OS}, {"TARGETARCH", target.Architecture}, {"TARGETVARIANT", target.Variant},
		{"BUILDPLATFORM", cache.FormatPlatform(build)}, {"BUILDOS", build.OS}, {"BUILDARCH", build.Architecture}, {"BUILDVARIANT", build.Variant},
	}
}
