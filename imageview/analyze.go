package imageview

import (
	"cmp"
	"fmt"
	"io/fs"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Snapshots is what the analysis reads of the store: the directory holding
// a layer's snapshot (cache.Store has it).
type Snapshots interface {
	SnapshotDir(diffID digest.Digest) string
}

// File is one entry of a layer: what `kiln layers IMAGE --layer N` lists.
type File struct {
	Path string `json:"path"`
	// Change is A (added), C (changed: replaced, or a directory whose
	// mode or owner changed) or D (deleted by a whiteout or an opaque
	// directory).
	Change string `json:"change"`
	// Type is file, dir, symlink, hardlink, char, block, fifo or socket;
	// empty for D.
	Type string `json:"type,omitempty"`
	// Size is the content bytes the entry adds: a regular file's or
	// symlink's size, 0 for a directory and for every hard link to an
	// inode but the first. For D it is the bytes the deletion removes
	// from the image.
	Size int64  `json:"size"`
	Mode string `json:"mode,omitempty"` // as ls -l: -rwxr-xr-x
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	// Link is a symlink's target, or the path of the first link of a hard
	// link in the same layer.
	Link string `json:"link,omitempty"`
	// Wasted: a later layer replaces or deletes this copy.
	Wasted bool `json:"wasted,omitempty"`

	prev *prevCopy // for C: the copy it replaces, to compare contents
	mode fs.FileMode
}

// prevCopy locates the copy a C entry replaces.
type prevCopy struct {
	snapshot string
	file     File
}

// Layer is one row of `kiln layers`: one history entry of the image.
type Layer struct {
	Index int `json:"index"`
	// DiffID is empty for history entries without a layer (ENV, CMD...).
	DiffID     digest.Digest `json:"diffID,omitempty"`
	EmptyLayer bool          `json:"emptyLayer,omitempty"`
	CreatedBy  string        `json:"createdBy"`
	Comment    string        `json:"comment,omitempty"`
	// Size is the layer's content bytes, as `kiln history` shows.
	Size    int64 `json:"size"`
	Added   int   `json:"added"`
	Changed int   `json:"changed"`
	Removed int   `json:"removed"`
	// WastedBytes are this layer's bytes that a later layer replaces or
	// deletes.
	WastedBytes int64 `json:"wastedBytes"`
	// Files are the layer's entries, in path order (JSON: only with
	// --layer).
	Files []File `json:"files,omitempty"`

	snapshot string
}

// WastedFile is a path whose earlier copies a later layer replaced or
// deleted.
type WastedFile struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	// Layers are the indexes of the layers holding the wasted copies.
	Layers []int `json:"layers"`
}

// Analysis is an image's layers and what they waste.
type Analysis struct {
	Image  digest.Digest `json:"image"`
	Layers []Layer       `json:"layers"`
	// Size is the sum of the layers' sizes; UserSize that of every layer
	// but the first.
	Size              int64   `json:"size"`
	UserSize          int64   `json:"userSize"`
	WastedBytes       int64   `json:"wastedBytes"`
	Efficiency        float64 `json:"efficiency"`
	UserWastedPercent float64 `json:"userWastedPercent"`
	// Wasted are the wasted paths, most bytes first.
	Wasted []WastedFile `json:"wasted"`

	root *node // the image's final tree
}

// node is an entry of the merged tree while the layers are replayed.
type node struct {
	children map[string]*node // directories only
	layer    int              // index in Analysis.Layers of the layer that wrote it
	file     int              // index in that layer's Files; -1 for the root
	size     int64
}

// Analyze replays the image's layers, base first, from their snapshots.
// id names the image in the result.
func Analyze(s Snapshots, id digest.Digest, img ocispec.Image) (*Analysis, error) {
	a := &Analysis{Image: id, root: &node{children: map[string]*node{}, file: -1}}
	diffIDs := img.RootFS.DiffIDs
	li := 0
	for i, h := range img.History {
		row := Layer{Index: i, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && li < len(diffIDs) {
			row.DiffID = diffIDs[li]
			li++
		}
		a.Layers = append(a.Layers, row)
	}
	for ; li < len(diffIDs); li++ { // more layers than history says
		a.Layers = append(a.Layers, Layer{Index: len(a.Layers), DiffID: diffIDs[li]})
	}
	wasted := map[string]*WastedFile{}
	first := true
	for i := range a.Layers {
		l := &a.Layers[i]
		if l.DiffID == "" {
			continue
		}
		l.snapshot = s.SnapshotDir(l.DiffID)
		if err := a.replay(i, wasted); err != nil {
			return nil, fmt.Errorf("read layer %s: %w", l.DiffID, err)
		}
		a.Size += l.Size
		if !first {
			a.UserSize += l.Size
		}
		first = false
	}
	a.sortFiles()
	a.Wasted = []WastedFile{} // [] rather than null in JSON
	for _, w := range wasted {
		a.Wasted = append(a.Wasted, *w)
		a.WastedBytes += w.Bytes
	}
	slices.SortFunc(a.Wasted, func(x, y WastedFile) int {
		return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), cmp.Compare(x.Path, y.Path))
	})
	a.Efficiency = 1
	if a.Size > 0 {
		a.Efficiency = 1 - float64(a.WastedBytes)/float64(a.Size)
	}
	if a.UserSize > 0 {
		a.UserWastedPercent = float64(a.WastedBytes) / float64(a.UserSize)
	}
	return a, nil
}

// sortFiles puts every layer's files in path order, and the final tree's
// references to them in step.
func (a *Analysis) sortFiles() {
	moved := make([][]int, len(a.Layers)) // layer -> old index -> new
	for i := range a.Layers {
		files := a.Layers[i].Files
		order := make([]int, len(files))
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(files[x].Path, files[y].Path) })
		sorted := make([]File, len(files))
		moved[i] = make([]int, len(files))
		for newIdx, old := range order {
			sorted[newIdx] = files[old]
			moved[i][old] = newIdx
		}
		a.Layers[i].Files = sorted
	}
	var walk func(n *node)
	walk = func(n *node) {
		if n.file >= 0 {
			n.file = moved[n.layer][n.file]
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(a.root)
}

// kill removes the subtree n at path p from the image: every copy in it is
// wasted. It returns the bytes removed.
func (a *Analysis) kill(n *node, p string, wasted map[string]*WastedFile) int64 {
	var total int64
	if n.file >= 0 {
		f := &a.Layers[n.layer].Files[n.file]
		if f.Type != "dir" {
			f.Wasted = true
			a.Layers[n.layer].WastedBytes += n.size
			total += n.size
			w := wasted[p]
			if w == nil {
				w = &WastedFile{Path: p}
				wasted[p] = w
			}
			w.Bytes += n.size
			if !slices.Contains(w.Layers, n.layer) {
				w.Layers = append(w.Layers, n.layer)
			}
		}
	}
	for name, c := range n.children {
		total += a.kill(c, join(p, name), wasted)
	}
	return total
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// lookup finds the container path p in the tree, or nil.
func (a *Analysis) lookup(p string) (parent, n *node, name string) {
	cur := a.root
	rest := p[1:]
	for {
		var elem string
		elem, rest, _ = cut(rest)
		next := cur.children[elem]
		if rest == "" {
			return cur, next, elem
		}
		if next == nil || next.children == nil {
			return nil, nil, elem
		}
		cur = next
	}
}

func cut(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// FinalFile is a non-directory entry of the image's final tree.
type FinalFile struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Layer int    `json:"layer"` // the layer that last wrote it
	Type  string `json:"type"`

	snapshot string
	diffID   digest.Digest
}

// Final lists the files of the image's final tree (no directories), in
// path order.
func (a *Analysis) Final() []FinalFile {
	var out []FinalFile
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		if n.file >= 0 && n.children == nil {
			l := &a.Layers[n.layer]
			f := l.Files[n.file]
			out = append(out, FinalFile{Path: p, Size: n.size, Layer: n.layer, Type: f.Type, snapshot: l.snapshot, diffID: l.DiffID})
		}
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			walk(n.children[name], join(p, name))
		}
	}
	walk(a.root, "/")
	return out
}
