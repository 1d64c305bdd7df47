package builder

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// addStep runs an ADD. Without archives to extract or URLs to download it is
// a COPY. Otherwise, as BuildKit: local tar archives (plain, gzip, bzip2, xz,
// zstd; told by content) are extracted into the destination, a directory,
// unless --unpack=false; URLs are downloaded (mode 0600, Last-Modified as
// mtime, --checksum verified) and not extracted unless --unpack=true.
// Sources are applied in order, later ones over earlier ones.
func (b *build) addStep(ctx context.Context, st *stage, req copyRequest) (hit bool, err error) {
	remote := false
	for _, src := range req.sd.SourcePaths {
		switch {
		case isGitSource(src):
			return false, fmt.Errorf("ADD %s: adding a Git repository is not supported", src)
		case isHTTPSource(src):
			if u, err := url.Parse(src); err != nil || u.Host == "" {
				return false, fmt.Errorf("ADD %s: invalid URL", src)
			}
			remote = true
		}
	}
	var checksum digest.Digest
	if req.checksum != "" {
		if len(req.sd.SourcePaths)+len(req.sd.SourceContents) != 1 {
			return false, fmt.Errorf("ADD --checksum=%s: checksum can't be specified for multiple sources", req.checksum)
		}
		if !remote {
			return false, fmt.Errorf("ADD --checksum=%s: checksum requires HTTP(S) or Git sources", req.checksum)
		}
		d, err := digest.Parse(req.checksum)
		if err != nil {
			return false, fmt.Errorf("ADD --checksum=%s: %w", req.checksum, err)
		}
		if d.Algorithm() != digest.SHA256 {
			return false, fmt.Errorf("ADD --checksum=%s: only sha256 is supported", req.checksum)
		}
		checksum = d
	}
	unpackLocal := req.unpack == nil || *req.unpack
	unpackRemote := req.unpack != nil && *req.unpack
	if !remote && (!unpackLocal || b.dry) {
		// The dry pass cannot tell archives yet: the COPY checks apply.
		return b.copyStep(ctx, st, req)
	}

	// Gather the sources in order: context files (archives marked), URLs,
	// then heredocs.
	var items []addItem
	var release []func()
	defer func() {
		for _, r := range release {
			r()
		}
	}()
	anyArchive := false
	for _, src := range req.sd.SourcePaths {
		if isHTTPSource(src) {
			items = append(items, addItem{url: src})
			continue
		}
		one := req
		one.sd = instructions.SourcesAndDest{SourcePaths: []string{src}, DestPath: req.sd.DestPath}
		srcs, err := b.contextCopySources(st, one)
		if err != nil {
			return false, err
		}
		release = append(release, srcs.release)
		for _, it := range srcs.items {
			ai := addItem{item: it}
			if unpackLocal && !b.dry && it.src.info.Mode().IsRegular() {
				ok, err := isArchive(it.src.path)
				if err != nil {
					return false, fmt.Errorf("ADD %s: %w", it.src.name, err)
				}
				ai.archive = ok
				anyArchive = anyArchive || ok
			}
			items = append(items, ai)
		}
	}
	if len(req.sd.SourceContents) > 0 {
		docs := req
		docs.sd = instructions.SourcesAndDest{SourceContents: req.sd.SourceContents, DestPath: req.sd.DestPath}
		srcs, err := b.contextCopySources(st, docs)
		if err != nil {
			return false, err
		}
		release = append(release, srcs.release)
		for _, it := range srcs.items {
			items = append(items, addItem{item: it})
		}
	}
	if !remote && !anyArchive {
		return b.copyStep(ctx, st, req)
	}
	mode, err := parseChmod(req.chmod)
	if err != nil {
		return false, fmt.Errorf("ADD --chmod=%s: %w", req.chmod, err)
	}
	dest := req.sd.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || dest == ".."
	if len(items) > 1 && !destIsDir {
		return false, fmt.Errorf("ADD %s: when using ADD with more than one source file, the destination must be a directory and end with a /",
			strings.Join(req.sd.SourcePaths, " "))
	}
	if b.dry {
		return false, nil
	}

	// Download, then key the step by content: the files' descriptions (an
	// archive's digest among them) and the downloads' digests.
	for i := range items {
		it := &items[i]
		if it.url == "" {
			continue
		}
		dir, err := b.store.TempDir("add-")
		if err != nil {
			return false, err
		}
		release = append(release, func() { os.RemoveAll(dir) })
		st.vtx.logf("downloading %s", it.url)
		d, err := fetch(ctx, http.DefaultClient, it.url, dir, checksum)
		if err != nil {
			return false, fmt.Errorf("ADD %s: %w", it.url, err)
		}
		if it.item, err = downloadItem(d); err != nil {
			return false, fmt.Errorf("ADD %s: %w", it.url, err)
		}
		if unpackRemote {
			if it.archive, err = isArchive(d.path); err != nil {
				return false, fmt.Errorf("ADD %s: %w", it.url, err)
			}
		}
	}
	type keyItem struct {
		Kind, Name, Base string
		Dir              bool
		Files            []string
	}
	keyItems := make([]keyItem, len(items))
	listing := map[string]string{}
	var all []*contextFile
	for _, it := range items {
		if it.url == "" {
			all = append(all, it.item.files...)
		}
	}
	for k, v := range newContextListing(b.opts.ContextDir, all).entries() {
		listing[k] = v
	}
	for i, it := range items {
		ki := keyItem{Kind: it.kind(), Name: it.item.src.name, Base: it.item.src.base, Dir: it.item.src.info.IsDir()}
		for _, f := range it.item.files {
			ki.Files = append(ki.Files, f.describe())
		}
		if it.url != "" {
			mtime := it.item.files[0].fi().ModTime().UTC().Format(time.RFC3339Nano)
			ki.Files = append(ki.Files, mtime)
			listing[it.url] = it.item.files[0].describe() + " " + mtime
		}
		keyItems[i] = ki
	}
	names := append([]string(nil), req.sd.SourcePaths...)
	for _, c := range req.sd.SourceContents {
		names = append(names, "<<"+c.Path)
	}
	createdBy := fmt.Sprintf("ADD%s %s %s # buildkit", req.historyFlags(), strings.Join(names, " "), req.sd.DestPath)
	inputs := cache.StepInputs{Instruction: createdBy}
	key := stepKey(st.cacheKey, struct {
		Op, Dest, Workdir, Chown, Chmod string
		Unpack                          *bool
		Sources                         []keyItem
		Epoch                           *time.Time
		Excludes                        []string `json:",omitempty"`
	}{"ADD", dest, st.img.Config.WorkingDir, req.chown, req.chmod, req.unpack, keyItems, st.epoch, req.excludes})
	dest = resolveWorkdir(st.img.Config.WorkingDir, dest)
	return b.step(ctx, st, stepSpec{createdBy: createdBy, key: key, inputs: inputs, files: mapListing(listing), make: func() (cache.Layer, bool, error) {
		return b.changeLayer(ctx, st, func(r *rootfs) (bool, error) {
			owner := ids{}
			if req.chown != "" {
				var err error
				if owner, err = resolveUserGroup(req.chown, r.Open); err != nil {
					return false, fmt.Errorf("ADD --chown=%s: %w", req.chown, err)
				}
			}
			for _, it := range items {
				if it.archive {
					if err := b.extractInto(ctx, r, it, dest, owner, req.chown != ""); err != nil {
						return false, err
					}
					continue
				}
				ci, err := placeItem(r, it.item, dest, destIsDir, false, owner, mode)
				if err != nil {
					return false, err
				}
				plan := copyPlan{owner: owner, chown: req.chown != "", mode: mode, items: []copyItem{ci}}
				if err := plan.apply(ctx, r); err != nil {
					return false, fmt.Errorf("ADD %s: %w", ci.src.name, err)
				}
			}
			return true, nil
		})
	}})
}

// addItem is one source of an ADD.
type addItem struct {
	item    copyItem
	url     string // the URL it was downloaded from
	archive bool   // extracted into the destination
}

func (it addItem) kind() string {
	switch {
	case it.url != "" && it.archive:
		return "url-archive"
	case it.url != "":
		return "url"
	case it.archive:
		return "archive"
	}
	return "file"
}

// extractInto extracts an archive into dest, a directory (created, owned by
// owner, when missing), as BuildKit does: --chown owns every entry, --chmod
// does not apply, and nothing leaves dest.
func (b *build) extractInto(ctx context.Context, r *rootfs, it addItem, dest string, owner ids, chown bool) error {
	if _, err := r.MkdirAll(dest, 0o755, owner); err != nil {
		return fmt.Errorf("ADD %s: %w", it.item.src.name, err)
	}
	real, info, err := r.resolve(dest)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", it.item.src.name, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("ADD %s: destination %s is not a directory", it.item.src.name, dest)
	}
	var ch *layer.IDPair
	if chown {
		ch = &layer.IDPair{UID: owner.UID, GID: owner.GID}
	}
	if err := extractArchive(ctx, it.item.src.path, real, ch); err != nil {
		return fmt.Errorf("ADD %s: %w", it.item.src.name, err)
	}
	return nil
}

// downloadItem is a downloaded file as a source to copy.
func downloadItem(d *download) (copyItem, error) {
	info, err := os.Lstat(d.path)
	if err != nil {
		return copyItem{}, err
	}
	src := source{path: d.path, base: d.name, name: d.url, info: info}
	f, err := statFile(d.path, "", info)
	if err != nil {
		return copyItem{}, err
	}
	if err := f.setDigest(d.digest); err != nil {
		return copyItem{}, err
	}
	return copyItem{src: src, files: []*contextFile{f}}, nil
}

// isURL reports whether a COPY or ADD source is remote.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git@")
}

// isHTTPSource is BuildKit's test for an ADD source to download: http(s)
// and not a Git repository.
func isHTTPSource(src string) bool {
	return (strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")) && !isGitSource(src)
}

// isGitSource is BuildKit's test for an ADD source that is a Git repository:
// git@host:repo, a git:// or ssh:// URL, or an http(s) URL whose path ends
// in .git.
func isGitSource(src string) bool {
	for _, p := range []string{"git@", "git://", "ssh://"} {
		if strings.HasPrefix(src, p) {
			return true
		}
	}
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		u, err := url.Parse(src)
		return err == nil && strings.HasSuffix(u.Path, ".git")
	}
	return false
}
