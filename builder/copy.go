package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// copyRequest is a COPY or ADD instruction after expansion.
type copyRequest struct {
	name       string // "COPY" or "ADD"
	sd         instructions.SourcesAndDest
	from       string
	chown      string
	chmod      string
	link       bool
	excludes   []string
	parents    bool
	add        bool
	checksum   string
	keepGitDir *bool
	unpack     *bool // ADD --unpack
}

// source is one file or directory of the context to copy.
type source struct {
	path string // absolute host path, inside the context, symlinks resolved
	base string // the name it is copied under into a directory
	// parentRel is, for COPY --parents, the path kept under the
	// destination: the match's path below the pivot ("/./") or the root.
	parentRel string
	name      string // as the user wrote it, for messages
	info      fs.FileInfo
	// contextRoot marks the build context's root: as BuildKit, which
	// receives the context into a fresh directory, its time is the build's.
	contextRoot bool
	// pivot, for COPY --parents, is the directory the kept path starts
	// from (the context's root without a "/./"): the destination takes its
	// mtime, as the destination of a directory source takes that one's.
	pivot *source
}

// copySources is what a COPY copies: files of the context, of another
// stage or image, or heredocs.
type copySources struct {
	items []copyItem
	// keyPart is what the sources add to the step's cache key; for context
	// files, keySources are streamed into its place instead (see copykey.go).
	keyPart    any
	keySources []keySource
	// listing (context path → description) explains misses.
	listing fileListing
	// preserveOwner keeps the sources' owners (COPY --from); context files
	// and heredocs become root's.
	preserveOwner bool
	release       func()
	// finish computes keyPart or keySources, and listing, once every
	// file's digest is known (nil when they are known from the start).
	finish func()
}

func (b *build) copyStep(ctx context.Context, st *stage, req copyRequest) (hit bool, err error) {
	switch {
	case req.checksum != "":
		return false, fmt.Errorf("%s --checksum can only be used with a URL source", req.name)
	}
	mode, err := parseChmod(req.chmod)
	if err != nil {
		return false, fmt.Errorf("%s --chmod=%s: %w", req.name, req.chmod, err)
	}
	// The key is needed before copying only when a record could match: on
	// a cold build the files are hashed while they are copied instead.
	hashFirst := len(b.opts.CacheFrom) > 0 ||
		!b.opts.NoCache && !b.noCacheStage(st) && b.store.HasCacheChildren(st.cacheKey)
	var srcs *copySources
	if req.from != "" {
		srcs, err = b.stageSources(ctx, st, req)
	} else {
		srcs, err = b.contextCopySourcesHashing(st, req, hashFirst)
	}
	if err != nil || srcs == nil { // nil: the dry pass has checked what it can
		return false, err
	}
	defer srcs.release()
	dest := req.sd.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || dest == ".." || req.parents
	if len(srcs.items) > 1 && !destIsDir {
		return false, fmt.Errorf("%s %s: when using %s with more than one source file, the destination must be a directory and end with a /",
			req.name, strings.Join(req.sd.SourcePaths, " "), req.name)
	}
	if b.dry {
		return false, nil
	}
	names := append([]string(nil), req.sd.SourcePaths...)
	for _, c := range req.sd.SourceContents {
		names = append(names, "<<"+c.Path)
	}
	createdBy := fmt.Sprintf("%s%s %s %s # buildkit", req.name, req.historyFlags(), strings.Join(names, " "), req.sd.DestPath)
	keyDest := dest // as written: dest is resolved against WORKDIR below
	stepKeyOf := func() (digest.Digest, cache.StepInputs, fileListing) {
		if srcs.finish != nil {
			srcs.finish()
		}
		inputs := struct {
			Op, Dest, Workdir, Chown, Chmod string
			Sources                         any
			Epoch                           *time.Time
			Parents                         bool     `json:",omitempty"`
			Excludes                        []string `json:",omitempty"`
		}{req.name, keyDest, st.img.Config.WorkingDir, req.chown, req.chmod, srcs.keyPart, st.epoch, req.parents, req.excludes}
		var key digest.Digest
		if srcs.keyPart != nil {
			key = stepKey(st.cacheKey, inputs)
		} else {
			hole := newHole()
			inputs.Sources = holeValue(hole)
			key = stepKeyStreaming(st.cacheKey, inputs, hole, func(w io.Writer) { writeKeySources(w, srcs.keySources) })
		}
		return key, cache.StepInputs{Instruction: createdBy}, srcs.listing
	}
	spec := stepSpec{createdBy: createdBy}
	if hashFirst {
		spec.key, spec.inputs, spec.files = stepKeyOf()
	} else {
		spec.keyAfterMake = stepKeyOf
	}
	dest = resolveWorkdir(st.img.Config.WorkingDir, dest)
	spec.make = func() (cache.Layer, bool, error) {
		return b.changeLayer(ctx, st, func(r *rootfs) (bool, error) {
			owner := ids{}
			if req.chown != "" {
				var err error
				if owner, err = resolveUserGroup(req.chown, r.Open); err != nil {
					return false, fmt.Errorf("%s --chown=%s: %w", req.name, req.chown, err)
				}
			}
			plan := copyPlan{owner: owner, chown: req.chown != "", mode: mode, preserveOwner: srcs.preserveOwner,
				parents: req.parents, stats: b.statCache(), reuse: b.previousCopy(st, createdBy), stream: st.epoch == nil}
			if plan.reuse == nil && plan.stream {
				// A re-run whose cache is not used (--no-cache) most
				// likely makes the layer its last run made: see whether
				// the store has it before writing a duplicate.
				if d, ok := b.previousLayer(st, createdBy); ok && plan.sourcesHashed() {
					plan.known, plan.likely = b.store, d
				}
			}
			for _, it := range srcs.items {
				it, err := placeItem(r, it, dest, destIsDir, req.parents, owner, mode)
				if err != nil {
					return false, err
				}
				plan.items = append(plan.items, it)
			}
			return true, plan.apply(ctx, r)
		})
	}
	return b.step(ctx, st, spec)
}

// historyFlags are the flags BuildKit keeps in a COPY's or ADD's history
// text, in its order: --parents, --chown and --chmod (not --from, --link,
// --exclude and the like).
func (req copyRequest) historyFlags() string {
	var b strings.Builder
	if req.parents {
		b.WriteString(" --parents")
	}
	if req.chown != "" {
		b.WriteString(" --chown=" + req.chown)
	}
	if req.chmod != "" {
		b.WriteString(" --chmod=" + req.chmod)
	}
	return b.String()
}

// placeItem decides where a source lands, as COPY does — a directory's
// contents into dest, a file into dest when dest is (or is written as) a
// directory, else as dest itself; with --parents below its kept path — and
// creates the directories it needs, owned by owner.
//
// As BuildKit, the directories it creates take the --chmod mode (0755
// without one), and a directory source's destination directory — created
// or already there, also when reached through a symlink — keeps its mode and
// owner but takes the source directory's mtime once the copy is done.
func placeItem(r *rootfs, it copyItem, dest string, destIsDir, parents bool, owner ids, mode fileMode) (copyItem, error) {
	it.target = dest
	dir := dest
	switch {
	case parents:
		it.target = path.Join(dest, it.src.parentRel)
		dir = it.target
		if !it.src.info.IsDir() {
			dir = path.Dir(it.target)
		}
	case it.src.info.IsDir():
	case destIsDir || r.IsDir(dest):
		it.target = path.Join(dest, it.src.base)
	default:
		dir = path.Dir(dest)
	}
	if _, err := r.MkdirAll(dir, mode.created(), owner); err != nil {
		return it, err
	}
	// The directory whose mtime the copy sets at the end: a directory
	// source's destination, or with --parents dest itself (from the pivot).
	topSrc, topDir := &it.src, it.target
	if parents {
		topSrc, topDir = it.src.pivot, dest
	}
	if topSrc != nil && topSrc.info.IsDir() {
		top, err := r.dirEntry(topDir)
		if err != nil {
			return it, err
		}
		top.ModTime = topSrc.info.ModTime()
		if topSrc.contextRoot {
			top.ModTime = time.Now()
		}
		it.top = top
	}
	if !it.src.info.IsDir() {
		// A file landing in a directory gives it the build's time.
		into, err := r.dirEntry(path.Dir(it.target))
		if err != nil {
			return it, err
		}
		it.into = into.Name
	}
	return it, nil
}

// contextCopySources gathers a COPY's sources from the build context and its
// heredocs. The key covers the content of every file: names, bytes, modes
// and link targets, never times.
func (b *build) contextCopySources(st *stage, req copyRequest) (*copySources, error) {
	return b.contextCopySourcesHashing(st, req, true)
}

// contextCopySourcesHashing is contextCopySources that, without hashFirst,
// leaves the digests the stat cache does not know to be computed while the
// files are copied (then finish must run after the copy).
func (b *build) contextCopySourcesHashing(st *stage, req copyRequest, hashFirst bool) (*copySources, error) {
	var srcs []source
	if len(req.sd.SourcePaths) > 0 {
		var err error
		if srcs, err = b.contextSources(req); err != nil {
			return nil, err
		}
	}
	out := &copySources{release: func() {}}
	var all []*contextFile
	for _, src := range srcs {
		if b.dry {
			out.items = append(out.items, copyItem{src: src})
			continue
		}
		exclude, err := newExcluder(req.excludes, src.path)
		if err != nil {
			return nil, err
		}
		files, err := walkSource(src, b.ignore, exclude)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.name, src.name, err)
		}
		out.items = append(out.items, copyItem{src: src, files: files})
		all = append(all, files...)
	}
	for _, c := range req.sd.SourceContents {
		out.items = append(out.items, heredocItem(c.Path, c.Data))
	}
	if b.dry {
		return out, nil
	}
	if hashFirst {
		if err := hashFiles(all, b.statCache()); err != nil {
			return nil, fmt.Errorf("%s: %w", req.name, err)
		}
	} else {
		digestsFromStatCache(all, b.statCache())
	}
	out.finish = func() {
		out.keySources = nil
		for _, it := range out.items {
			out.keySources = append(out.keySources, keySource{Name: it.src.name, Base: it.src.base, Dir: it.src.info.IsDir(), Files: it.files})
		}
		out.listing = newContextListing(b.opts.ContextDir, all)
	}
	return out, nil
}

// matchesAny reports whether any of the names matches one of the patterns.
func matchesAny(patterns []string, names ...string) bool {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return false
	}
	for _, n := range names {
		//nolint:staticcheck // plain match of one path
		if ok, _ := pm.MatchesOrParentMatches(n); ok {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return data
}

// contextSources resolves the sources of a COPY in the build context:
// wildcards are expanded, symlinks resolved inside the context, and a source
// outside the context or missing is an error naming it.
func (b *build) contextSources(req copyRequest) ([]source, error) {
	ctxRoot, err := openRootfs(b.opts.ContextDir)
	if err != nil {
		return nil, err
	}
	defer ctxRoot.Close()
	var out []source
	for _, src := range req.sd.SourcePaths {
		if isURL(src) {
			return nil, fmt.Errorf("%s %s: source can't be a URL for %s", req.name, src, req.name)
		}
		if rel := path.Clean(src); rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("%s %s: forbidden path outside the build context", req.name, src)
		}
		clean := path.Clean("/" + src)
		pivot := "/"
		var pivotSrc *source
		if req.parents {
			if before, _, ok := strings.Cut(src, "/./"); ok {
				pivot = path.Clean("/" + before)
			}
			real, info, err := ctxRoot.resolve(pivot)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s %s: %q not found in the build context", req.name, src, pivot)
			}
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", req.name, src, err)
			}
			pivotSrc = &source{path: real, info: info, contextRoot: real == ctxRoot.dir}
		}
		matches := []string{clean}
		if strings.ContainsAny(src, "*?[") {
			found, err := filepath.Glob(filepath.Join(b.opts.ContextDir, filepath.FromSlash(clean)))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", req.name, src, err)
			}
			matches = matches[:0]
			for _, f := range found {
				rel, err := filepath.Rel(b.opts.ContextDir, f)
				if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
					continue
				}
				if excluded, _ := b.ignore.check(filepath.Join(ctxRoot.dir, rel), false); excluded {
					continue // .dockerignore hides it
				}
				matches = append(matches, "/"+filepath.ToSlash(rel))
			}
			// As BuildKit (AllowEmptyWildcard): a pattern may match nothing.
		}
		for _, m := range matches {
			real, info, err := ctxRoot.resolve(m)
			if err == nil {
				if excluded, descend := b.ignore.check(real, info.IsDir()); excluded && !descend {
					err = fs.ErrNotExist // .dockerignore hides it
				}
			}
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("%s %s: %q not found in the build context", req.name, src, m)
				}
				return nil, fmt.Errorf("%s %s: %w", req.name, src, err)
			}
			if len(req.excludes) > 0 && !info.IsDir() && matchesAny(req.excludes, path.Base(m), strings.TrimPrefix(m, "/")) {
				continue // --exclude
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(m, pivot), "/")
			out = append(out, source{path: real, base: path.Base(m), parentRel: rel, name: src, info: info,
				contextRoot: real == ctxRoot.dir, pivot: pivotSrc})
		}
	}
	return out, nil
}
