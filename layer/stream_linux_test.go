package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// streamCase extracts entries (in the differ's order) into a fresh
// directory and streams the tar the differ should make of it, as a COPY
// does: EntryHeader of each header, the content as it is extracted.
func streamCase(t *testing.T, entries []tar.Header, contents map[string]string) (dir string, sd *StreamDiff) {
	t.Helper()
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	sd = NewStreamDiff()
	t.Cleanup(func() { sd.Close() })
	first := map[string]*tar.Header{}
	for i := range entries {
		h := &entries[i]
		h.Format = tar.FormatPAX
		body := contents[h.Name]
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		must(t, sd.WriteHeader(EntryHeader(h, first[h.Linkname])))
		first[h.Name] = h
		if h.Size > 0 {
			_, err := io.WriteString(io.MultiWriter(tw, sd), body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	dir = t.TempDir()
	_, err := Apply(context.Background(), dir, &src, ApplyOptions{})
	must(t, err)
	return dir, sd
}

func streamEntries() ([]tar.Header, map[string]string) {
	mt := time.Unix(1700000000, 123456789)
	long := strings.Repeat("n", 150)
	return []tar.Header{
			{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: mt},
			{Typeflag: tar.TypeReg, Name: "d/a", Mode: 0o4755, Uid: 3000000, Gid: 7, ModTime: mt},
			{Typeflag: tar.TypeDir, Name: "d/empty/", Mode: 0o700, ModTime: mt.Add(time.Hour)},
			{Typeflag: tar.TypeFifo, Name: "d/fifo", Mode: 0o600, ModTime: mt},
			{Typeflag: tar.TypeLink, Name: "d/link", Linkname: "d/a"},
			{Typeflag: tar.TypeReg, Name: "d/" + long, Mode: 0o644, ModTime: mt},
			{Typeflag: tar.TypeSymlink, Name: "d/sym", Linkname: "../nowhere", Mode: 0o777, ModTime: mt},
			{Typeflag: tar.TypeReg, Name: "d/ünï cödé", Mode: 0o600, ModTime: mt},
			{Typeflag: tar.TypeReg, Name: "top", Mode: 0o644, ModTime: mt},
		}, map[string]string{
			"d/a": strings.Repeat("a", 100000), "d/" + long: "long\n", "d/ünï cödé": "", "top": "top\n",
		}
}

// TestStreamDiffMatchesWriteDiff: the tar streamed from what Apply was
// given is the differ's tar of what Apply made, byte for byte.
func TestStreamDiffMatchesWriteDiff(t *testing.T) {
	entries, contents := streamEntries()
	dir, sd := streamCase(t, entries, contents)
	res, ok, err := sd.Verify(context.Background(), dir)
	must(t, err)
	want, err := Write(context.Background(), io.Discard, dir, Uncompressed, DiffOptions{})
	must(t, err)
	if !ok || !sd.Taken() {
		t.Fatal("the streamed tar was not taken")
	}
	if res != want {
		t.Errorf("streamed %+v, differ %+v", res, want)
	}
}

// TestStreamDiffRefusesMismatch: a directory that is not what was streamed
// (an extra file, another mode, an xattr) fails Verify, and the caller
// diffs it instead.
func TestStreamDiffRefusesMismatch(t *testing.T) {
	for name, change := range map[string]func(t *testing.T, dir string){
		"extra file": func(t *testing.T, dir string) { must(t, os.WriteFile(filepath.Join(dir, "d/extra"), nil, 0o644)) },
		"mode":       func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "top"), 0o600)) },
		"xattr":      func(t *testing.T, dir string) { setXattr(t, filepath.Join(dir, "top"), "user.x", "1") },
		"removed":    func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "d/fifo"))) },
	} {
		t.Run(name, func(t *testing.T) {
			entries, contents := streamEntries()
			dir, sd := streamCase(t, entries, contents)
			change(t, dir)
			if _, ok, err := sd.Verify(context.Background(), dir); err != nil || ok || sd.Taken() {
				t.Errorf("Verify after a change: taken %v, err %v", ok, err)
			}
		})
	}
}

// TestDirHeaderIsDiffers: DirHeader is the differ's header of a directory.
func TestDirHeaderIsDiffers(t *testing.T) {
	dir := t.TempDir()
	mkdirs(t, dir, "x")
	must(t, os.Chmod(filepath.Join(dir, "x"), 0o2750))
	setXattr(t, filepath.Join(dir, "x"), "user.k", "v")
	must(t, os.Chtimes(filepath.Join(dir, "x"), time.Unix(5, 0), time.Unix(1600000000, 999)))
	hdr, err := DirHeader(filepath.Join(dir, "x"), "x")
	must(t, err)
	sd := NewStreamDiff()
	defer sd.Close()
	must(t, sd.WriteHeader(hdr))
	res, ok, err := sd.Verify(context.Background(), dir)
	must(t, err)
	want, err := Write(context.Background(), io.Discard, dir, Uncompressed, DiffOptions{})
	must(t, err)
	if !ok || res != want {
		t.Errorf("DirHeader %+v streams %+v (taken %v), differ %+v", hdr, res, ok, want)
	}
}
