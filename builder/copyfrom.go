package builder

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// stageSources gathers a COPY --from's sources from another stage or an
// image: its tree is mounted read-only for the copy, paths resolve inside it,
// and owners are kept, as BuildKit does. The key is the source's own key (a
// stage's cache key or an image ID) and the paths: a stage's content follows
// from its key.
func (b *build) stageSources(ctx context.Context, st *stage, req copyRequest) (*copySources, error) {
	from, err := st.expand(req.from)
	if err != nil {
		return nil, fmt.Errorf("%s --from=%s: %w", req.name, req.from, err)
	}
	if len(req.sd.SourceContents) > 0 {
		return nil, fmt.Errorf("%s --from cannot copy heredocs", req.name)
	}
	ts, err := b.resolveFrom(ctx, st, from)
	if err != nil {
		return nil, fmt.Errorf("%s --%w", req.name, err)
	}
	if ts == nil { // the dry pass: the stage is planned, the image found
		return nil, nil
	}
	dir, release, err := b.mountTree(ts)
	if err != nil {
		return nil, err
	}
	srcKey := ts.key
	out := &copySources{preserveOwner: true, release: release}
	fail := func(err error) (*copySources, error) {
		out.release()
		return nil, err
	}
	root, err := openRootfs(dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	for _, src := range req.sd.SourcePaths {
		matches := []string{path.Clean("/" + src)}
		if strings.ContainsAny(src, "*?[") {
			found, err := filepath.Glob(filepath.Join(root.dir, filepath.FromSlash(path.Clean("/"+src))))
			if err != nil {
				return fail(fmt.Errorf("%s --from=%s %s: %w", req.name, from, src, err))
			}
			matches = matches[:0]
			for _, f := range found {
				if rel, err := filepath.Rel(root.dir, f); err == nil && !strings.HasPrefix(rel, "..") {
					matches = append(matches, "/"+filepath.ToSlash(rel))
				}
			}
		}
		for _, m := range matches {
			real, info, err := root.resolve(m)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fail(fmt.Errorf("%s --from=%s %s: %q not found", req.name, from, src, m))
				}
				return fail(fmt.Errorf("%s --from=%s %s: %w", req.name, from, src, err))
			}
			s := source{path: real, base: path.Base(m), name: src, info: info}
			files, err := walkSource(s, nil)
			if err != nil {
				return fail(fmt.Errorf("%s --from=%s %s: %w", req.name, from, src, err))
			}
			out.items = append(out.items, copyItem{src: s, files: files})
		}
	}
	out.keyPart = struct {
		From    digest.Digest
		Sources []string
	}{srcKey, req.sd.SourcePaths}
	return out, nil
}

// imageWithLayers is a config holding just a layer list, to compute lowers.
func imageWithLayers(diffIDs []digest.Digest) (img dockerImage) {
	img.RootFS.DiffIDs = diffIDs
	return img
}

// heredocItem is a COPY <<NAME source: a file made from the heredoc's text.
func heredocItem(name, data string) copyItem {
	// As BuildKit, which writes it out at build time: the file has that time.
	info := heredocInfo{name: path.Base(name), size: int64(len(data)), mtime: time.Now()}
	return copyItem{
		src:   source{base: path.Base(name), name: "<<" + name, info: info},
		files: []*contextFile{{sum: sha256.Sum256([]byte(data)), more: &fileMore{data: []byte(data), info: info}}},
	}
}

// heredocInfo describes a heredoc as a regular file of mode 0644.
type heredocInfo struct {
	name  string
	size  int64
	mtime time.Time
}

func (h heredocInfo) Name() string       { return h.name }
func (h heredocInfo) Size() int64        { return h.size }
func (h heredocInfo) Mode() fs.FileMode  { return 0o644 }
func (h heredocInfo) ModTime() time.Time { return h.mtime }
func (h heredocInfo) IsDir() bool        { return false }
func (h heredocInfo) Sys() any           { return nil }
