// Package builder turns a Dockerfile and its context into an image in the
// store, with BuildKit's semantics: every RUN executes in a sandbox over the
// parent layers' snapshots and every filesystem change becomes a layer.
package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/progress"
)

// Options are the settings of one build.
type Options struct {
	ContextDir string
	// Dockerfile is the Dockerfile's path; "-" reads it from Stdin; empty
	// means ContextDir/Dockerfile.
	Dockerfile string
	Stdin      io.Reader
	Tags       []string
	BuildArgs  map[string]string
	NoCache    bool
	// NoCacheFilter names stages (or their indexes) that must not use the cache.
	NoCacheFilter []string
	// SourceDateEpoch, when set, is every timestamp of the image: history,
	// config, and file times in new layers are clamped to it.
	SourceDateEpoch *time.Time
	// ExplainCache receives, for each step, hit or miss and what changed.
	ExplainCache io.Writer
	// Target is the stage to build (default: the last).
	Target string
	// CacheFrom are where steps missing from the store are looked for
	// (--cache-from); CacheTo receives this build's records (--cache-to).
	CacheFrom []CacheImporter
	CacheTo   CacheExporter
	// Compression is used when the image's new layers are first exported.
	Compression layer.Compression
	// Progress receives the build's steps as they start and end, the
	// output of RUN steps and the lint warnings; nil builds silently.
	Progress progress.Writer
	// Warnings receives warnings, even when Progress is silenced (default stderr).
	Warnings io.Writer
	Log      *slog.Logger
	// Pull, when set, fetches FROM images from their registry as
	// PullPolicy says (default: those the store lacks).
	Pull       PullFunc
	PullPolicy PullPolicy
	// Secrets are what RUN --mount=type=secret mounts, by id (kiln build --secret).
	Secrets map[string]SecretSource
	// Network is the network of RUN steps without --network:
	// NetworkDefault (the default), NetworkNone or NetworkHost.
	Network string
	// NetworkNamespace makes the build's network namespace for RUN steps on
	// NetworkDefault (kiln build attaches it to the store's default bridge).
	NetworkNamespace NetworkFunc
	// Allow are the entitlements granted: EntitlementNetworkHost,
	// EntitlementSecurityInsecure (kiln build --allow).
	Allow []string
	// RunLimits are --ulimit and --shm-size of the RUN steps (sandbox.go).
	RunLimits

	// Inputs and outputs (kiln build --label, --add-host, --build-context, -o).
	// Labels are set on the final image's config.
	Labels map[string]string
	// ExtraHosts are "NAME:IP" entries added to the /etc/hosts of RUN steps.
	ExtraHosts []string
	// Contexts are the named contexts (--build-context) by name.
	Contexts map[string]NamedContext
	// TemporaryContext says ContextDir goes away with the build (a context
	// from stdin or Git): the store keeps no stat cache for it.
	TemporaryContext bool
	// Export, when set, delivers the image once the build has made (and
	// tagged) it, while the build still holds what it made; log is the
	// output of the build's "exporting to image" step.
	Export func(ctx context.Context, s *cache.Store, id digest.Digest, log io.Writer) error
	// Platforms are the target platforms (kiln build --platform): none
	// builds for the host, one builds an image for it, several build one
	// image each and return their index (platform.go).
	Platforms []ocispec.Platform
}

// Build builds the Dockerfile and returns the image ID. The image is tagged
// only when every step succeeded.
func Build(ctx context.Context, s *cache.Store, opts Options) (digest.Digest, error) {
	if opts.Compression == "" {
		opts.Compression = layer.Gzip
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	if opts.Warnings == nil {
		opts.Warnings = os.Stderr
	}
	rep := &reporter{w: opts.Progress}
	// Parallel stages explain side by side: one line at a time.
	if opts.ExplainCache != nil {
		opts.ExplainCache = &lockedWriter{w: opts.ExplainCache}
	}
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(ctxDir); err != nil {
		return "", fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("build context %s: not a directory", opts.ContextDir)
	}
	if _, err := os.ReadDir(ctxDir); err != nil {
		return "", fmt.Errorf("build context: %w", err)
	}
	opts.ContextDir = ctxDir
	if err := checkSecurityOptions(&opts); err != nil {
		return "", err
	}
	for _, t := range opts.Tags {
		if _, err := cache.NormalizeName(t); err != nil {
			return "", fmt.Errorf("tag %q: %w", t, err)
		}
	}
	data, name, err := readDockerfile(opts.Dockerfile, ctxDir, opts.Stdin)
	if err != nil {
		return "", err
	}
	load := rep.start("", "[internal] load build definition from "+name)
	load.status(fmt.Sprintf("transferring dockerfile: %dB", len(data)), load.started)
	df, err := parseDockerfile(name, data)
	if err != nil {
		load.done(false, err)
		return "", err
	}
	if df.syntax != "" {
		load.logf("note: %s: # syntax=%s: kiln builds with its own Dockerfile frontend (BuildKit's parser, dockerfile:1 features)", df.name, df.syntax)
	}
	// The build checks' warnings go with the progress (printed after the
	// build, as docker build does); # check=error=true makes them fatal.
	warnings, err := lintDockerfile(data, opts.BuildArgs, storeEnv(s))
	for _, w := range warnings {
		rep.warn(w.Short(), w.URL)
	}
	if err != nil {
		err = &Error{File: name, Err: err}
		load.done(false, err)
		return "", err
	}
	load.done(false, nil)
	// The build holds what it makes through a lease that ends with this
	// process: a build killed with -9 pins nothing once it is gone.
	leased, lease, err := leaseBuild(s)
	if err != nil {
		return "", err
	}
	// The layers of the build's steps are synced together, not one by
	// one: when the image is stored, and as the build ends for the rest
	// (see cache.Layer.Unsynced).
	if err := leased.DeferLayerSyncs(); err != nil {
		return "", err
	}
	id, err := (&build{store: leased, opts: opts, rep: rep, df: df, data: data, start: time.Now()}).runAndTag(ctx)
	if serr := leased.SyncLayers(); serr != nil {
		opts.Log.Warn("sync the build's layers", "err", serr)
	}
	if rerr := s.DeleteLease(lease.Kind, lease.Name); rerr != nil {
		opts.Log.Warn("release the build's lease", "err", rerr)
	}
	if err != nil {
		// Leave the store as it was: the layers of the failed build go, unless
		// another kiln process has the store open (then a later GC takes them).
		if _, gcErr := s.GC(context.WithoutCancel(ctx)); gcErr != nil && !errors.Is(gcErr, cache.ErrBusy) {
			opts.Log.Warn("clean up after failed build", "err", gcErr)
		}
		return "", err
	}
	return id, nil
}

// leaseBuild takes a build's lease, owned by this process, and returns the
// view of s that adds what the build makes to it.
func leaseBuild(s *cache.Store) (*cache.Store, cache.Lease, error) {
	self, err := cache.Self()
	if err != nil {
		return nil, cache.Lease{}, fmt.Errorf("lease the build: %w", err)
	}
	var n [8]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, cache.Lease{}, fmt.Errorf("lease the build: %w", err)
	}
	l := cache.Lease{Kind: "build", Name: hex.EncodeToString(n[:]), Owner: self}
	leased, err := s.Leased(l)
	return leased, l, err
}

// runAndTag runs the stages and tags the result: the build's work while it
// holds its lease.
func (b *build) runAndTag(ctx context.Context) (digest.Digest, error) {
	opts := b.opts
	var err error
	if b.ignore, err = loadIgnore(opts.ContextDir, opts.Dockerfile); err != nil {
		return "", err
	}
	b.sandboxes.networkFn = opts.NetworkNamespace
	id, err := b.runPlatforms(ctx)
	if err != nil {
		b.export.done(false, err)
	}
	if rerr := b.sandboxes.release(); rerr != nil {
		opts.Log.Warn("release the build's sandboxes", "err", rerr)
	}
	if err == nil {
		b.exportCache(ctx)
	}
	if b.stats != nil && err == nil && !opts.TemporaryContext {
		if err := b.stats.Save(); err != nil {
			opts.Log.Warn("save stat cache", "err", err)
		}
	}
	if err != nil {
		return "", err
	}
	for _, t := range opts.Tags {
		started := time.Now()
		if err := b.store.Tag(t, id); err != nil {
			b.export.done(false, err)
			return "", err
		}
		n, _ := cache.NormalizeName(t)
		b.export.status("naming to "+n, started)
	}
	if opts.Export != nil {
		if err := opts.Export(ctx, b.store, id, b.export.stream(1)); err != nil {
			b.export.done(false, err)
			return "", err
		}
	}
	b.export.done(false, nil)
	return id, nil
}

// build is the state of one Build call.
type build struct {
	store *cache.Store
	opts  Options
	rep   *reporter
	// export is the vertex of the image's commit and tags.
	export *vertex
	df     *dockerfile
	data   []byte // the Dockerfile
	start  time.Time
	stats  *cache.StatCache // opened on first use
	ignore *ignorer         // the context's .dockerignore
	// used are the records this build hit or made, for --cache-to.
	used []cache.CacheRecord
	// dry makes steps check their input and change nothing: the preflight pass.
	dry bool
	// results returns a stage built by this build (during the real pass).
	results func(index int) *stage
	// mu guards what parallel stages share: used, layerDirs.
	mu sync.Mutex
	// layerDirs are the snapshot directories of the layers this build has
	// used as lowers ("" for an empty layer): a layer the build holds
	// does not change, so each step need not read every lower's record.
	layerDirs map[digest.Digest]string
	// sandboxes are what the RUN steps share (confinement, cgroup, network).
	sandboxes sandboxes
	// namedCtx are the named contexts' trees (--build-context NAME=DIR).
	namedCtx namedContexts
	// platform is the target platform (nil: the host's); shared is set in
	// the builds of a multi-platform build (platform.go).
	platform *ocispec.Platform
	shared   *platformShared
}

// statCache is the build context's stat cache.
func (b *build) statCache() *cache.StatCache {
	if b.stats == nil {
		b.stats = b.store.StatCache(b.opts.ContextDir)
	}
	return b.stats
}

func (b *build) errorf(line int, format string, args ...any) error {
	return &Error{File: b.df.name, Line: line, Err: fmt.Errorf(format, args...)}
}

func (b *build) wrap(line int, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{File: b.df.name, Line: line, Err: err}
}

// lockedWriter serializes writes from parallel stages.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// warnf reports a problem that does not fail the build.
func (b *build) warnf(format string, args ...any) {
	fmt.Fprintf(b.opts.Warnings, "warning: "+format+"\n", args...)
}
