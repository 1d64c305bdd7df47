package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// mountOverlay mounts an overlay at merged and unmounts it at cleanup.
// upper and work may be empty for a read-only mount of lowers only.
func mountOverlay(t testing.TB, merged, upper, work string, lowers ...string) (unmount func()) {
	t.Helper()
	kilntest.RequireRoot(t)
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	opts += ",index=off,redirect_dir=off,metacopy=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlay (%s): %v", opts, err)
	}
	mounted := true
	unmount = func() {
		if !mounted {
			return
		}
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
			return
		}
		mounted = false
	}
	t.Cleanup(unmount)
	return unmount
}

func mkdirs(t testing.TB, root string, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		must(t, os.MkdirAll(filepath.Join(root, rel), 0o755))
	}
}

func writeFile(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

func setXattr(t testing.TB, path, name, value string) {
	t.Helper()
	must(t, unix.Lsetxattr(path, name, []byte(value), 0))
}

func writeDiffBytes(t testing.TB, dir string, opts DiffOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, WriteDiff(context.Background(), &buf, dir, opts))
	return buf.Bytes()
}

// entry is the part of a tar header the tests compare.
type entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Size     int64
	Dev      [2]int64
	Xattrs   string // sorted "k=v" list
	Content  string // sha256 prefix of the contents of regular files
	Mtime    int64
}

func (e entry) String() string {
	return fmt.Sprintf("%q type=%c mode=%#o %d:%d link=%q size=%d dev=%v xattrs=%q", e.Name, e.Type, e.Mode, e.UID, e.GID, e.Link, e.Size, e.Dev, e.Xattrs)
}

// readEntries parses a tar; mtimes are kept only when keepTimes.
func readEntries(t testing.TB, data []byte, keepTimes bool) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		var xattrs []string
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xattrs = append(xattrs, name+"="+v)
			}
		}
		sort.Strings(xattrs)
		e := entry{
			Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			Link: hdr.Linkname, Size: hdr.Size, Dev: [2]int64{hdr.Devmajor, hdr.Devminor},
			Xattrs: strings.Join(xattrs, ","),
		}
		if hdr.Typeflag == tar.TypeReg {
			h := sha256.New()
			_, err := io.Copy(h, tr)
			must(t, err)
			e.Content = hex.EncodeToString(h.Sum(nil))[:12]
		}
		if keepTimes {
			e.Mtime = hdr.ModTime.Unix()
		}
		out = append(out, e)
	}
}

func contentHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

func compareEntries(t testing.TB, got, want []entry) {
	t.Helper()
	n := max(len(got), len(want))
	bad := false
	for i := 0; i < n; i++ {
		var g, w string
		if i < len(got) {
			g = got[i].String() + " content=" + got[i].Content
		}
		if i < len(want) {
			w = want[i].String() + " content=" + want[i].Content
		}
		if g != w {
			bad = true
			t.Errorf("entry %d:\n got  %s\n want %s", i, g, w)
		}
	}
	if bad {
		t.FailNow()
	}
}

// listing describes every path under root (not root itself) with what the
// merged view of an overlay must agree on.
func listing(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s mode=%#o %d:%d mtime=%d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " content=" + contentHash(string(data))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" dev=%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		line += " xattrs=" + strings.Join(userXattrs(t, p), ",")
		out = append(out, line)
		return nil
	})
	must(t, err)
	return out
}

func userXattrs(t testing.TB, p string) []string {
	t.Helper()
	x := newXattrReader()
	list, err := x.list(p)
	must(t, err)
	var out []string
	must(t, splitXattrNames(slices.Clone(list), func(name string) error {
		if !strings.HasPrefix(name, "user.") {
			return nil
		}
		v, err := x.get(p, name)
		if err != nil {
			return err
		}
		out = append(out, name+"="+string(v))
		return nil
	}))
	sort.Strings(out)
	return out
}

// dirNames lists a directory, failing the test on error.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
