package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// FuzzApply applies arbitrary tars in both whiteout modes and checks that
// nothing appears outside the target dir: not next to it, not in a sentinel
// dir beside it, and not at any host path that an entry name or a symlink
// target in the archive could point Apply at.
func FuzzApply(f *testing.F) {
	kilntest.RequireRoot(f)
	for _, data := range hostileTars(f, "/tmp/kiln-fuzz-sentinel") {
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Add(kilntest.Tar(f,
		kilntest.TarEntry{Name: "a/", Type: tar.TypeDir},
		kilntest.TarEntry{Name: "a/.wh..wh..opq"},
		kilntest.TarEntry{Name: "a/.wh.b"},
		kilntest.TarEntry{Name: "a/f", Body: "f", Xattrs: map[string]string{"user.x": "y"}},
		kilntest.TarEntry{Name: "a/l", Type: tar.TypeLink, Link: "a/f"},
	), true)

	f.Fuzz(func(t *testing.T, data []byte, overlay bool) {
		j := newJail(t)
		candidates := escapeCandidates(data, j)
		existed := make(map[string]bool, len(candidates))
		for _, p := range candidates {
			_, err := os.Lstat(p)
			existed[p] = err == nil
		}
		_, _ = Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{OverlayWhiteouts: overlay})
		j.check(t)
		for _, p := range candidates {
			if _, err := os.Lstat(p); err == nil && !existed[p] {
				t.Fatalf("Apply created %s outside %s", p, j.root)
			}
		}
	})
}

// escapeCandidates lists the host paths outside j.root that an archive's
// names could reach if Apply resolved them like the host does: each name
// taken as absolute, relative to the target dir's parent, and below each
// symlink target in the archive.
func escapeCandidates(data []byte, j jail) []string {
	var names []string
	links := map[string]string{} // cleaned symlink name -> target
	tr := tar.NewReader(bytes.NewReader(data))
	for len(names) < 64 {
		hdr, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				break
			}
			break
		}
		rel := cleanName(hdr.Name)
		if rel == "" || strings.ContainsRune(rel, 0) {
			continue
		}
		names = append(names, rel)
		if hdr.Typeflag == tar.TypeSymlink {
			links[rel] = hdr.Linkname
		}
	}
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if p != j.root && !strings.HasPrefix(p, j.root+"/") && p != "/" {
			out = append(out, p)
		}
	}
	for _, rel := range names {
		add("/" + rel)
		add(filepath.Join(j.base, rel))
		add(filepath.Join(j.sentinel, rel))
		for link, target := range links {
			rest, ok := strings.CutPrefix(rel, link+"/")
			if !ok {
				continue
			}
			if path.IsAbs(target) {
				add(filepath.Join(target, rest))
			} else {
				add(filepath.Join(j.root, path.Dir(link), target, rest))
			}
		}
	}
	return out
}
