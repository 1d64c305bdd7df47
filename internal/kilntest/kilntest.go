// Package kilntest holds the test helpers that several packages' tests
// share: skipping without root or a tool, and writing a layer tar from a
// list of entries, making an ordinary user for the rootless tests. It
// imports nothing of kiln but the leaf internal/proc, so every package's
// tests (layer's included) can use it; storetest adds a temporary store.
package kilntest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// RequireRoot skips t unless it runs as root (mounts, namespaces, mknod,
// chown, trusted.* xattrs). CI runs as root, so nothing skips there.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (mounts, namespaces, mknod, chown, trusted.* xattrs); running as uid %d", os.Geteuid())
	}
}

// NeedTool skips t when the program name is not installed (make deps
// installs what the tests use).
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s (make deps installs it): %v", name, err)
	}
}

// DirNames lists the names in dir (a store's trash, tmp/), failing t if
// it cannot be read.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TarEntry is one entry of a test tar. Type 0 is a regular file; Mode 0 is
// 0644 (0755 for a directory); Mtime is in Unix seconds; Xattrs become
// SCHILY.xattr. PAX records.
type TarEntry struct {
	Name, Link string
	Type       byte
	Mode       int64
	UID, GID   int
	Body       string
	Xattrs     map[string]string
	Mtime      int64
}

// Tar writes entries, in order, as an uncompressed tar.
func Tar(t testing.TB, entries ...TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.Name, Linkname: e.Link, Typeflag: e.Type, Mode: e.Mode,
			Uid: e.UID, Gid: e.GID, Size: int64(len(e.Body)),
			ModTime: time.Unix(e.Mtime, 0),
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		for k, v := range e.Xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
