package layer

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Changes lists what the overlay upper directory upper changes over lowers
// (top-most first), sorted by path, as `docker diff` does: whiteouts are
// deletions (and an opaque directory deletes what the lowers had in it),
// what the lowers have is changed ('C'), the rest added ('A'). A directory
// copied up unchanged only to hold a change below it is reported when
// something below it is; skip lists container paths left out with what is
// below them (mount points), and a directory the lowers lack that only
// leads to one of them is left out too unless something else changed
// below it.
func Changes(upper string, lowers, skip []string) ([]Change, error) {
	var out []Change
	changedBelow := map[string]bool{} // directories with a change reported below them
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		cp := "/" + filepath.ToSlash(strings.TrimPrefix(p, upper+"/"))
		if slices.Contains(skip, cp) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if isWhiteout(&st) {
			if _, ok := lowerLookup(lowers, cp); ok {
				out = append(out, Change{'D', cp})
				markParents(changedBelow, cp)
			}
			return nil
		}
		lower, inLower := lowerLookup(lowers, cp)
		switch {
		case !inLower && d.IsDir() && slices.ContainsFunc(skip, func(m string) bool { return strings.HasPrefix(m, cp+"/") }):
			// Maybe only made to hold a mount point.
			out = append(out, Change{'a', cp})
		case !inLower:
			out = append(out, Change{'A', cp})
			markParents(changedBelow, cp)
		case d.IsDir() && sameDirMeta(&st, lower):
			// Maybe only copied up for what changed below: decided
			// once the walk knows.
			out = append(out, Change{'c', cp})
		default:
			out = append(out, Change{'C', cp})
			markParents(changedBelow, cp)
		}
		if d.IsDir() && inLower && IsOpaqueDir(p) {
			// Everything the image had in it that the upper lacks is gone.
			gone, err := opaqueDeletions(p, lowers, cp)
			if err != nil {
				return err
			}
			for _, g := range gone {
				out = append(out, Change{'D', g})
				markParents(changedBelow, g)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, ch := range out {
		if ch.Kind == 'c' || ch.Kind == 'a' {
			if !changedBelow[ch.Path] {
				continue
			}
			ch.Kind -= 'a' - 'A'
		}
		kept = append(kept, ch)
	}
	slices.SortFunc(kept, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(kept, func(a, b Change) bool { return a.Path == b.Path }), nil
}

func markParents(m map[string]bool, p string) {
	for p != "/" {
		p = path.Dir(p)
		m[p] = true
	}
}

// sameDirMeta: a copied-up directory whose owner and mode are the image's.
func sameDirMeta(st *unix.Stat_t, lower *unix.Stat_t) bool {
	return lower.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode == lower.Mode && st.Uid == lower.Uid && st.Gid == lower.Gid
}

// lowerLookup finds the container path p in the lower layers, top first,
// as overlayfs would: a whiteout hides it, an opaque parent hides the
// layers below.
func lowerLookup(lowers []string, p string) (*unix.Stat_t, bool) {
	for _, l := range lowers {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(l, p), &st); err == nil {
			if isWhiteout(&st) {
				return nil, false
			}
			return &st, true
		}
		// Below an opaque directory of this layer the layers under it
		// do not count.
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if IsOpaqueDir(filepath.Join(l, dir)) {
				return nil, false
			}
		}
	}
	return nil, false
}

// opaqueDeletions lists the image's entries of the container directory cp
// that the opaque upper directory dir does not have.
func opaqueDeletions(dir string, lowers []string, cp string) ([]string, error) {
	seen := map[string]bool{}
	var gone []string
	for _, l := range lowers {
		ents, err := os.ReadDir(filepath.Join(l, cp))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := path.Join(cp, e.Name())
			if seen[name] {
				continue
			}
			seen[name] = true
			if _, err := os.Lstat(filepath.Join(dir, e.Name())); err == nil {
				continue
			}
			if _, ok := lowerLookup(lowers, name); ok {
				gone = append(gone, name)
			}
		}
	}
	return gone, nil
}
