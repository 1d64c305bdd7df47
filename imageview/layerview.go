package imageview

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// BySize sorts files biggest first, then by path.
func BySize(files []File) []File {
	out := slices.Clone(files)
	slices.SortStableFunc(out, func(x, y File) int {
		return cmp.Or(cmp.Compare(y.Size, x.Size), strings.Compare(x.Path, y.Path))
	})
	return out
}

// ContentChanges is the layer's entries that change content against the
// layers below: what it adds and deletes, and the C entries whose type,
// bytes, link target or device differ from the copy they replace (not
// those that only change mode, owner or times, nor directories whose
// metadata changed).
func (a *Analysis) ContentChanges(i int) ([]File, error) {
	l := &a.Layers[i]
	var out []File
	for _, f := range l.Files {
		if f.Change == "C" {
			if f.Type == "dir" && f.prev == nil {
				continue // a directory's metadata
			}
			same, err := sameContent(f.prev, filepath.Join(l.snapshot, f.Path))
			if err != nil {
				return nil, fmt.Errorf("compare %s: %w", f.Path, err)
			}
			if same {
				continue
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// sameContent compares the file at host path p with the copy it replaces.
func sameContent(prev *prevCopy, p string) (bool, error) {
	if prev == nil {
		return false, nil // it replaced a directory
	}
	q := filepath.Join(prev.snapshot, prev.file.Path)
	a, err := os.Lstat(q)
	if err != nil {
		return false, err
	}
	b, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	if a.Mode().Type() != b.Mode().Type() {
		return false, nil
	}
	switch {
	case b.Mode().IsRegular():
		if a.Size() != b.Size() {
			return false, nil
		}
		return sameBytes(q, p)
	case b.Mode().Type()&os.ModeSymlink != 0:
		x, err := os.Readlink(q)
		if err != nil {
			return false, err
		}
		y, err := os.Readlink(p)
		return x == y, err
	}
	return sameDevice(a, b), nil
}

func sameBytes(p, q string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	g, err := os.Open(q)
	if err != nil {
		return false, err
	}
	defer g.Close()
	bf, bg := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, errf := io.ReadFull(f, bf)
		m, errg := io.ReadFull(g, bg)
		if n != m || !bytes.Equal(bf[:n], bg[:m]) {
			return false, nil
		}
		if errf == io.EOF || errf == io.ErrUnexpectedEOF {
			return errg == io.EOF || errg == io.ErrUnexpectedEOF, nil
		}
		if errf != nil {
			return false, errf
		}
		if errg != nil {
			return false, errg
		}
	}
}

// Tree is a directory tree of entries, each directory's Size the sum of
// what is below it.
type Tree struct {
	Name     string  `json:"name"`
	Path     string  `json:"path"`
	Change   string  `json:"change,omitempty"` // for entries of a layer
	Type     string  `json:"type,omitempty"`
	Layer    *int    `json:"layer,omitempty"` // for entries of the final tree: the layer that wrote it
	Size     int64   `json:"size"`
	Children []*Tree `json:"children,omitempty"`
}

// TreeOf builds the tree of files (container paths), directories sized by
// their contents, children biggest first. Intermediate directories the
// files do not list are made up. Beyond depth (0: no limit) directories
// keep their size and lose their children.
func TreeOf(files []File, depth int) *Tree {
	root := &Tree{Name: "/", Path: "/", Type: "dir"}
	index := map[string]*Tree{"/": root}
	for _, f := range files {
		t := at(index, f.Path)
		t.Change, t.Type = f.Change, f.Type
		if f.Type != "dir" {
			t.Size = f.Size
		}
	}
	root.finish(depth, 0)
	return root
}

// FinalTree is the image's final tree, each file marked with the layer
// that last wrote it.
func (a *Analysis) FinalTree(depth int) *Tree {
	root := &Tree{Name: "/", Path: "/", Type: "dir"}
	index := map[string]*Tree{"/": root}
	for _, f := range a.Final() {
		t := at(index, f.Path)
		t.Type, t.Size = f.Type, f.Size
		layer := f.Layer
		t.Layer = &layer
	}
	root.finish(depth, 0)
	return root
}

// at finds or makes the node of path p, and its parents, in index.
func at(index map[string]*Tree, p string) *Tree {
	if t, ok := index[p]; ok {
		return t
	}
	parent := at(index, path.Dir(p))
	t := &Tree{Name: path.Base(p), Path: p, Type: "dir"}
	parent.Children = append(parent.Children, t)
	index[p] = t
	return t
}

func (t *Tree) finish(depth, level int) int64 {
	if len(t.Children) == 0 {
		return t.Size
	}
	var sum int64
	for _, c := range t.Children {
		sum += c.finish(depth, level+1)
	}
	t.Size = sum
	slices.SortStableFunc(t.Children, func(x, y *Tree) int {
		return cmp.Or(cmp.Compare(y.Size, x.Size), strings.Compare(x.Name, y.Name))
	})
	if depth > 0 && level >= depth {
		t.Children = nil
	}
	return sum
}
