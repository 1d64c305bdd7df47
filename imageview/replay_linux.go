package imageview

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kiln-build/kiln/layer"
)

// replay applies layer i's snapshot (overlay format: 0/0 character devices
// are whiteouts, an opaque directory hides what the layers below have in
// it) to the tree, recording its entries and what they waste.
func (a *Analysis) replay(i int, wasted map[string]*WastedFile) error {
	l := &a.Layers[i]
	snap := l.snapshot
	hides := map[string]bool{}       // directories hiding the lowers' contents
	inodes := map[[2]uint64]string{} // hard-linked inodes seen -> first path
	add := func(f File) int {
		l.Files = append(l.Files, f)
		switch f.Change {
		case "A":
			l.Added++
		case "C":
			l.Changed++
		case "D":
			l.Removed++
		}
		return len(l.Files) - 1
	}
	remove := func(parent, n *node, name, p string) {
		removed := a.kill(n, p, wasted)
		delete(parent.children, name)
		add(File{Path: p, Change: "D", Size: removed})
	}
	return filepath.WalkDir(snap, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if hp == snap {
			return nil
		}
		cp := "/" + filepath.ToSlash(strings.TrimPrefix(hp, snap+"/"))
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("no stat data")
		}
		parent, old, name := a.lookup(cp)
		if parent == nil {
			// The parent is not a directory of the image: the
			// snapshot always holds its parent directories, so
			// this is a directory replaced by a file above.
			return nil
		}
		mode := info.Mode()
		if mode&fs.ModeCharDevice != 0 && st.Rdev == 0 { // whiteout
			if old != nil {
				remove(parent, old, name, cp)
			}
			return nil
		}
		f := File{Path: cp, Type: fileType(mode), Mode: mode.String(), UID: int(st.Uid), GID: int(st.Gid), mode: mode}
		if !d.IsDir() {
			f.Size = st.Size
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := inodes[key]; ok {
					f.Type, f.Link, f.Size = "hardlink", first, 0
				} else {
					inodes[key] = cp
				}
			}
			if mode&fs.ModeSymlink != 0 {
				if f.Link, err = os.Readlink(hp); err != nil {
					return err
				}
			}
			l.Size += f.Size
		}
		if d.IsDir() && old != nil && old.children != nil {
			// A directory the image has: copied up, maybe with new
			// metadata, maybe hiding what the lowers have in it.
			if hides[path.Dir(cp)] || layer.IsOpaqueDir(hp) {
				hides[cp] = true
				for cname, c := range old.children {
					if _, err := os.Lstat(filepath.Join(hp, cname)); errors.Is(err, fs.ErrNotExist) {
						remove(old, c, cname, join(cp, cname))
					}
				}
			}
			prev := a.Layers[old.layer].Files
			if old.file < 0 || prev[old.file].mode != mode || prev[old.file].UID != f.UID || prev[old.file].GID != f.GID {
				f.Change = "C"
				old.layer, old.file = i, add(f)
			}
			return nil
		}
		n := &node{layer: i, size: f.Size}
		if d.IsDir() {
			n.children = map[string]*node{}
			hides[cp] = true // nothing below it in the image: nothing to hide either
		}
		f.Change = "A"
		if old != nil {
			f.Change = "C"
			if old.children == nil && old.file >= 0 {
				f.prev = &prevCopy{snapshot: a.Layers[old.layer].snapshot, file: a.Layers[old.layer].Files[old.file]}
			}
			a.kill(old, cp, wasted)
		}
		n.file = add(f)
		parent.children[name] = n
		return nil
	})
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file"
}
