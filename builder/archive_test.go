package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kiln-build/kiln/layer"
)

// tarEntry is one entry of a test archive: a file (body), a directory
// (name ends in /), a symlink or a hardlink.
type tarEntry struct {
	name, body    string
	symlink, hard string
	uid, gid      int
	mode          int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Uid: e.uid, Gid: e.gid, Mode: e.mode, ModTime: time.Unix(1e9, 0), Format: tar.FormatPAX}
		switch {
		case e.symlink != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.symlink
		case e.hard != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.hard
		case strings.HasSuffix(e.name, "/"):
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressAll returns data in every format ADD extracts: plain, gzip,
// bzip2 and xz (Debian's tools: Go has no encoder), zstd.
func compressAll(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"tar": data}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	out["gzip"] = gz.Bytes()
	for name, tool := range map[string]string{"bzip2": "bzip2", "xz": "xz"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("needs %s (Debian's %s package; make deps installs it)", tool, tool)
		}
		cmd := exec.Command(path, "-c")
		cmd.Stdin = bytes.NewReader(data)
		c, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		out[name] = c
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	out["zstd"] = enc.EncodeAll(data, nil)
	enc.Close()
	return out
}

func TestIsArchive(t *testing.T) {
	dir := t.TempDir()
	archive := makeTar(t, []tarEntry{{name: "a/", mode: 0o755}, {name: "a/f", body: "hello"}})
	for format, data := range compressAll(t, archive) {
		p := filepath.Join(dir, "archive."+format)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, err := isArchive(p); !ok || err != nil {
			t.Errorf("%s archive: isArchive = %v, %v", format, ok, err)
		}
	}
	var gzText bytes.Buffer
	zw := gzip.NewWriter(&gzText)
	zw.Write([]byte("not a tar, only gzip"))
	zw.Close()
	for name, data := range map[string][]byte{
		"text.tar.gz": []byte("a text file named like an archive\n"),
		"empty.tar":   nil,
		"text.gz":     gzText.Bytes(),
		"broken.gz":   {0x1f, 0x8b, 0x08, 0x00},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, err := isArchive(p); ok || err != nil {
			t.Errorf("%s: isArchive = %v, %v; want false", name, ok, err)
		}
	}
	os.Symlink("archive.tar", filepath.Join(dir, "link"))
	if ok, _ := isArchive(filepath.Join(dir, "link")); ok {
		t.Error("a symlink is an archive")
	}
	if ok, _ := isArchive(dir); ok {
		t.Error("a directory is an archive")
	}
}

// TestExtractArchiveContained extracts hostile archives into dest inside a
// parent holding a sentinel: names, symlinks and hardlinks that point out
// of dest land inside it or fail, and the parent is never written.
func TestExtractArchiveContained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: extraction sets owners")
	}
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		inside  []string // paths that must exist in dest
		wantErr string
	}{
		{name: "dotdot", entries: []tarEntry{{name: "../../escape", body: "x"}}, inside: []string{"escape"}},
		{name: "absolute", entries: []tarEntry{{name: "/abs", body: "x"}, {name: "/etc/deep/f", body: "x"}}, inside: []string{"abs", "etc/deep/f"}},
		{name: "symlink to root", entries: []tarEntry{{name: "out", symlink: "/"}, {name: "out/through", body: "x"}}, inside: []string{"through", "out"}},
		{name: "symlink up", entries: []tarEntry{{name: "up", symlink: "../../.."}, {name: "up/through", body: "x"}}, inside: []string{"through"}},
		{name: "symlink chain", entries: []tarEntry{{name: "d/", mode: 0o755}, {name: "d/l", symlink: "../../sentinel"}, {name: "d/l", body: "replaced"}}, inside: []string{"d/l"}},
		{name: "hardlink out", entries: []tarEntry{{name: "hl", hard: "../sentinel"}}, wantErr: "hardlink"},
		{name: "hardlink absolute", entries: []tarEntry{{name: "hl", hard: "/etc/passwd"}}, wantErr: "hardlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			sentinel := filepath.Join(parent, "sentinel")
			if err := os.WriteFile(sentinel, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(parent, "a", "dest")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(parent, "archive.tar")
			if err := os.WriteFile(p, makeTar(t, tc.entries), 0o644); err != nil {
				t.Fatal(err)
			}
			err := extractArchive(context.Background(), p, dest, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one about %s", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for _, in := range tc.inside {
				if _, err := os.Lstat(filepath.Join(dest, in)); err != nil {
					t.Errorf("%s not inside dest: %v", in, err)
				}
			}
			// Nothing but dest changed in the parent, and the sentinel is intact.
			if data, err := os.ReadFile(sentinel); err != nil || string(data) != "untouched" {
				t.Errorf("sentinel: %q, %v", data, err)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(sentinel, &st); err != nil || st.Nlink != 1 {
				t.Errorf("sentinel links: %d, %v", st.Nlink, err)
			}
			for _, dir := range []string{parent, filepath.Join(parent, "a")} {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if n := e.Name(); n != "sentinel" && n != "archive.tar" && n != "a" && n != "dest" {
						t.Errorf("written outside dest: %s", filepath.Join(dir, n))
					}
				}
			}
		})
	}
}

func TestExtractArchiveChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: extraction sets owners")
	}
	dir := t.TempDir()
	entries := []tarEntry{{name: "d/", uid: 1234, gid: 5678}, {name: "d/f", body: "x", uid: 1234, gid: 5678, mode: 0o640}, {name: "l", symlink: "d/f", uid: 42, gid: 42}}
	data := makeTar(t, entries)
	for format, c := range compressAll(t, data) {
		t.Run(format, func(t *testing.T) {
			p := filepath.Join(dir, "a."+format)
			os.WriteFile(p, c, 0o644)
			kept, owned := filepath.Join(dir, format+"-kept"), filepath.Join(dir, format+"-owned")
			os.Mkdir(kept, 0o755)
			os.Mkdir(owned, 0o755)
			if err := extractArchive(context.Background(), p, kept, nil); err != nil {
				t.Fatal(err)
			}
			if err := extractArchive(context.Background(), p, owned, &layer.IDPair{UID: 7, GID: 8}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"d", "d/f", "l"} {
				var st syscall.Stat_t
				syscall.Lstat(filepath.Join(kept, name), &st)
				want := map[string][2]uint32{"d": {1234, 5678}, "d/f": {1234, 5678}, "l": {42, 42}}[name]
				if st.Uid != want[0] || st.Gid != want[1] {
					t.Errorf("%s kept owner %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
				}
				syscall.Lstat(filepath.Join(owned, name), &st)
				if st.Uid != 7 || st.Gid != 8 {
					t.Errorf("%s --chown owner %d:%d, want 7:8", name, st.Uid, st.Gid)
				}
			}
			if fi, err := os.Stat(filepath.Join(owned, "d/f")); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("mode: %v, %v", fi.Mode(), err)
			}
		})
	}
}
