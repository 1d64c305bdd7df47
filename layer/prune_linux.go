package layer

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// PruneUnchangedDirs removes from the overlay upper directory upper every
// directory whose only change over the lowers is its mtime — copied up
// because something was created and then removed inside it — as BuildKit
// leaves such directories out of a layer: one that holds nothing (after
// pruning), is not opaque, and has the mode, owner and xattrs of the lower
// directory it covers. lowers are the overlay's lower directories, top-most
// first. The merged tree is the same before and after but for those
// directories' mtimes.
func PruneUnchangedDirs(ctx context.Context, upper string, lowers []string) error {
	p := &pruner{ctx: ctx, lowers: lowers, buf: make([]byte, 64<<10), xattrs: newXattrReader()}
	if _, err := p.dir(upper, ""); err != nil {
		return fmt.Errorf("prune unchanged directories of %s: %w", upper, err)
	}
	return nil
}

type pruner struct {
	ctx    context.Context
	lowers []string
	buf    []byte
	xattrs *xattrReader
}

// dir prunes inside the upper directory abs (rel in the tree) and reports
// whether it is left empty.
func (p *pruner) dir(abs, rel string) (empty bool, err error) {
	if err := p.ctx.Err(); err != nil {
		return false, err
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", abs, err)
	}
	names, err := readDirNames(fd, p.buf)
	unix.Close(fd)
	if err != nil {
		return false, fmt.Errorf("%s: %w", abs, err)
	}
	left := len(names)
	for _, name := range names {
		childAbs, childRel := abs+"/"+name, joinRel(rel, name)
		var st unix.Stat_t
		if err := unix.Lstat(childAbs, &st); err != nil {
			return false, fmt.Errorf("lstat %s: %w", childAbs, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		empty, err := p.dir(childAbs, childRel)
		if err != nil || !empty {
			if err != nil {
				return false, err
			}
			continue
		}
		same, err := p.unchanged(childAbs, childRel, &st)
		if err != nil {
			return false, err
		}
		if same {
			if err := unix.Rmdir(childAbs); err != nil {
				return false, fmt.Errorf("remove %s: %w", childAbs, err)
			}
			left--
		}
	}
	return left == 0, nil
}

// unchanged reports whether the empty upper directory abs has the mode,
// owner and xattrs of the lower directory it covers, and hides nothing of
// it (it is not opaque, or the lower directory is empty too).
func (p *pruner) unchanged(abs, rel string, st *unix.Stat_t) (bool, error) {
	attrs, opaque, err := p.ownXattrs(abs)
	if err != nil {
		return false, err
	}
	for _, lower := range p.lowers {
		lst, found, hidden := p.lookupLower(lower, rel)
		if hidden {
			return false, nil
		}
		if !found {
			continue
		}
		if lst.Mode&unix.S_IFMT != unix.S_IFDIR || lst.Mode != st.Mode || lst.Uid != st.Uid || lst.Gid != st.Gid {
			return false, nil
		}
		if opaque {
			// Removed and made again: the same only if nothing was
			// removed with it (conservatively: this lower holds nothing
			// there, and no layer below is visible through it).
			empty, err := p.emptyDir(lower + "/" + rel)
			if err != nil || !empty {
				return false, err
			}
			_, lopaque, err := p.ownXattrs(lower + "/" + rel)
			if err != nil || !lopaque && !p.noneBelow(lower, rel) {
				return false, err
			}
		}
		lattrs, _, err := p.ownXattrs(lower + "/" + rel)
		if err != nil {
			return false, err
		}
		if len(lattrs) != len(attrs) {
			return false, nil
		}
		for k, v := range attrs {
			if lv, ok := lattrs[k]; !ok || lv != v {
				return false, nil
			}
		}
		return true, nil
	}
	return false, nil // new in this layer
}

// emptyDir reports whether the directory abs has no entries.
func (p *pruner) emptyDir(abs string) (bool, error) {
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", abs, err)
	}
	defer unix.Close(fd)
	names, err := readDirNames(fd, make([]byte, 4096))
	return len(names) == 0, err
}

// noneBelow reports whether rel exists in no lower under the given one.
func (p *pruner) noneBelow(lower, rel string) bool {
	below := false
	for _, l := range p.lowers {
		if below {
			if _, found, _ := p.lookupLower(l, rel); found {
				return false
			}
		}
		below = below || l == lower
	}
	return true
}

// ownXattrs returns the xattrs of abs that are not overlay's, and whether
// it is an opaque directory.
func (p *pruner) ownXattrs(abs string) (map[string]string, bool, error) {
	list, err := p.xattrs.list(abs)
	if err != nil || len(list) == 0 {
		return nil, false, err
	}
	attrs := map[string]string{}
	opaque := false
	err = splitXattrNames(list, func(name string) error {
		v, err := p.xattrs.get(abs, name)
		if err != nil {
			return err
		}
		switch overlayXattrKind(name) {
		case "":
			attrs[name] = string(v)
		case "opaque":
			opaque = opaque || string(v) == "y"
		}
		return nil
	})
	return attrs, opaque, err
}

// lookupLower finds rel in one lower directory, component by component
// (never following a symlink): found with its stat, absent (look further
// down), or hidden from the layers below (a whiteout, a non-directory or an
// opaque directory on the way).
func (p *pruner) lookupLower(lower, rel string) (st unix.Stat_t, found, hidden bool) {
	cur, opaqueAbove := lower, false
	for rest := rel; rest != ""; {
		var name string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name, rest = rest[:i], rest[i+1:]
		} else {
			name, rest = rest, ""
		}
		cur += "/" + name
		if err := unix.Lstat(cur, &st); err != nil {
			return st, false, opaqueAbove
		}
		if rest == "" {
			whiteout := isWhiteout(&st)
			return st, !whiteout, whiteout
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return st, false, true
		}
		if IsOpaqueDir(cur) {
			opaqueAbove = true
		}
	}
	return st, false, false
}
