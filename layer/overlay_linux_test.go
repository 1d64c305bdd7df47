package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// overlayFixture is a lower dir changed through a real overlay mount.
type overlayFixture struct {
	lower, upper string
	merged       []string // listing of the merged view after the changes
}

func newOverlayFixture(t *testing.T) overlayFixture {
	t.Helper()
	kilntest.RequireRoot(t)
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	mkdirs(t, base, "lower", "upper", "work", "merged")

	writeFile(t, lower, "etc/passwd", "root:x:0:0\n")
	writeFile(t, lower, "etc/hosts", "127.0.0.1 localhost\n")
	writeFile(t, lower, "del.txt", "delete me")
	writeFile(t, lower, "olddir/a", "a")
	writeFile(t, lower, "olddir/sub/b", "b")
	writeFile(t, lower, "fileToDir", "file")
	writeFile(t, lower, "dirToFile/c", "c")
	writeFile(t, lower, "owned", "owned")
	writeFile(t, lower, "chmoddir/keep", "keep")

	unmount := mountOverlay(t, merged, upper, work, lower)
	m := func(rel string) string { return filepath.Join(merged, rel) }
	must(t, os.Remove(m("del.txt")))
	must(t, os.RemoveAll(m("olddir")))
	must(t, os.Mkdir(m("olddir"), 0o750))
	writeFile(t, merged, "olddir/new", "new")
	must(t, os.Remove(m("fileToDir")))
	must(t, os.Mkdir(m("fileToDir"), 0o755))
	writeFile(t, merged, "fileToDir/child", "child")
	must(t, os.RemoveAll(m("dirToFile")))
	writeFile(t, merged, "dirToFile", "now a file")
	must(t, os.Link(m("etc/hosts"), m("hostslink")))
	must(t, os.Symlink("etc/passwd", m("sym")))
	must(t, unix.Mkfifo(m("fifo"), 0o640))
	must(t, unix.Mknod(m("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, os.Chmod(m("null"), 0o666))
	writeFile(t, merged, "suid", "#!/bin/sh\n")
	must(t, unix.Chmod(m("suid"), 0o4755))
	must(t, os.Lchown(m("owned"), 1000, 1000))
	writeFile(t, merged, "xattrfile", "x")
	setXattr(t, m("xattrfile"), "user.test", "val")
	must(t, os.Chmod(m("chmoddir"), 0o700))
	fx := overlayFixture{lower: lower, upper: upper, merged: listing(t, merged)}
	unmount()
	return fx
}

func TestWriteDiffOverlayUpper(t *testing.T) {
	fx := newOverlayFixture(t)
	got := readEntries(t, writeDiffBytes(t, fx.upper, DiffOptions{}), false)
	reg := func(name string, mode int64, content string) entry {
		return entry{Name: name, Type: tar.TypeReg, Mode: mode, Size: int64(len(content)), Content: contentHash(content)}
	}
	dir := func(name string, mode int64) entry { return entry{Name: name, Type: tar.TypeDir, Mode: mode} }
	marker := func(name string) entry { return entry{Name: name, Type: tar.TypeReg, Content: contentHash("")} }
	owned := reg("owned", 0o644, "owned")
	owned.UID, owned.GID = 1000, 1000
	xattrfile := reg("xattrfile", 0o644, "x")
	xattrfile.Xattrs = "user.test=val"
	want := []entry{
		dir("chmoddir/", 0o700),
		marker(".wh.del.txt"),
		reg("dirToFile", 0o644, "now a file"),
		dir("etc/", 0o755),
		reg("etc/hosts", 0o644, "127.0.0.1 localhost\n"),
		{Name: "fifo", Type: tar.TypeFifo, Mode: 0o640},
		dir("fileToDir/", 0o755),
		marker("fileToDir/.wh..wh..opq"),
		reg("fileToDir/child", 0o644, "child"),
		{Name: "hostslink", Type: tar.TypeLink, Mode: 0o644, Link: "etc/hosts"},
		{Name: "null", Type: tar.TypeChar, Mode: 0o666, Dev: [2]int64{1, 3}},
		dir("olddir/", 0o750),
		marker("olddir/.wh..wh..opq"),
		reg("olddir/new", 0o644, "new"),
		owned,
		reg("suid", 0o4755, "#!/bin/sh\n"),
		{Name: "sym", Type: tar.TypeSymlink, Mode: 0o777, Link: "etc/passwd"},
		xattrfile,
	}
	compareEntries(t, got, want)

	// Whiteouts and opaque markers have fixed metadata.
	for _, e := range readEntries(t, writeDiffBytes(t, fx.upper, DiffOptions{}), true) {
		if base := filepath.Base(e.Name); base == opaqueMarker || base == ".wh.del.txt" {
			if e.Mtime != 0 {
				t.Errorf("%s: mtime %d, want 0", e.Name, e.Mtime)
			}
		}
	}
}

func TestApplyOverlayRoundTrip(t *testing.T) {
	fx := newOverlayFixture(t)
	layer := writeDiffBytes(t, fx.upper, DiffOptions{})

	base := t.TempDir()
	applied, merged := filepath.Join(base, "applied"), filepath.Join(base, "merged")
	mkdirs(t, base, "applied", "merged")
	n, err := Apply(context.Background(), applied, bytes.NewReader(layer), ApplyOptions{OverlayWhiteouts: true})
	must(t, err)
	if n != int64(len(layer)) {
		t.Errorf("Apply read %d bytes, want %d", n, len(layer))
	}

	// The extracted snapshot diffs back to the very same bytes.
	again := writeDiffBytes(t, applied, DiffOptions{})
	if !bytes.Equal(again, layer) {
		compareEntries(t, readEntries(t, again, true), readEntries(t, layer, true))
		t.Fatal("WriteDiff(Apply(layer)) differs from layer but entries agree: header encoding differs")
	}

	// Used as a lowerdir above the original lower it shows the same tree.
	mountOverlay(t, merged, "", "", applied, fx.lower)
	got := listing(t, merged)
	if !slices.Equal(got, fx.merged) {
		t.Errorf("merged views differ:\n got  %q\n want %q", got, fx.merged)
	}
}
