package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// jail is a target dir next to a sentinel dir that must stay empty.
type jail struct {
	base, root, sentinel string
}

func newJail(t testing.TB) jail {
	t.Helper()
	kilntest.RequireRoot(t)
	base := t.TempDir()
	j := jail{base: base, root: filepath.Join(base, "root"), sentinel: filepath.Join(base, "sentinel")}
	mkdirs(t, base, "root", "sentinel")
	return j
}

// check fails if anything was written next to root or into the sentinel.
func (j jail) check(t testing.TB) {
	t.Helper()
	if names := dirNames(t, j.base); !slices.Equal(names, []string{"root", "sentinel"}) {
		t.Fatalf("entries appeared next to the target dir: %q", names)
	}
	if names := dirNames(t, j.sentinel); len(names) != 0 {
		t.Fatalf("sentinel dir outside the target was written to: %q", names)
	}
}

func (j jail) exists(t testing.TB, rel string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(j.root, rel))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func readString(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return string(data)
}

// hostileTars are archives trying to write outside the target dir; the
// sentinel path is the absolute path of a dir that must stay empty.
func hostileTars(t testing.TB, sentinel string) map[string][]byte {
	return map[string][]byte{
		"dotdot":     kilntest.Tar(t, kilntest.TarEntry{Name: "../evil", Body: "dotdot"}, kilntest.TarEntry{Name: "../../../../sentinel/evil2", Body: "x"}),
		"absolute":   kilntest.Tar(t, kilntest.TarEntry{Name: "/abs/evil", Body: "abs"}, kilntest.TarEntry{Name: sentinel + "/evil", Body: "x"}),
		"root-link":  kilntest.Tar(t, kilntest.TarEntry{Name: "link", Type: tar.TypeSymlink, Link: "/"}, kilntest.TarEntry{Name: "link/evil", Body: "via /"}),
		"up-link":    kilntest.Tar(t, kilntest.TarEntry{Name: "up", Type: tar.TypeSymlink, Link: "../.."}, kilntest.TarEntry{Name: "up/evil", Body: "via ../.."}),
		"chain-link": kilntest.Tar(t, kilntest.TarEntry{Name: "a", Type: tar.TypeSymlink, Link: "b/../../.."}, kilntest.TarEntry{Name: "b/", Type: tar.TypeDir}, kilntest.TarEntry{Name: "a/sentinel/evil", Body: "x"}),
		"abs-link":   kilntest.Tar(t, kilntest.TarEntry{Name: "s", Type: tar.TypeSymlink, Link: sentinel}, kilntest.TarEntry{Name: "s/evil", Body: "x"}),
		"rel-link":   kilntest.Tar(t, kilntest.TarEntry{Name: "s", Type: tar.TypeSymlink, Link: "../sentinel"}, kilntest.TarEntry{Name: "s/evil", Body: "x"}),
		"proc-link":  kilntest.Tar(t, kilntest.TarEntry{Name: "p", Type: tar.TypeSymlink, Link: "/proc/self/cwd"}, kilntest.TarEntry{Name: "p/evil", Body: "x"}),
		"hardlink":   kilntest.Tar(t, kilntest.TarEntry{Name: "hl", Type: tar.TypeLink, Link: "../../etc/passwd"}),
		"hardlink-via-symlink": kilntest.Tar(t,
			kilntest.TarEntry{Name: "etc", Type: tar.TypeSymlink, Link: "/etc"},
			kilntest.TarEntry{Name: "hl", Type: tar.TypeLink, Link: "etc/passwd"}),
		"whiteout-sentinel": kilntest.Tar(t, kilntest.TarEntry{Name: "../.wh.sentinel"}, kilntest.TarEntry{Name: "../../.wh..wh..opq"}),
		"symlink-then-file": kilntest.Tar(t,
			kilntest.TarEntry{Name: "f", Type: tar.TypeSymlink, Link: sentinel + "/target"},
			kilntest.TarEntry{Name: "f", Body: "replaces the symlink"}),
		"symlink-then-dir": kilntest.Tar(t,
			kilntest.TarEntry{Name: "d", Type: tar.TypeSymlink, Link: sentinel},
			kilntest.TarEntry{Name: "d/", Type: tar.TypeDir},
			kilntest.TarEntry{Name: "d/x", Body: "inside"}),
		"xattr-through-link": kilntest.Tar(t,
			kilntest.TarEntry{Name: "x", Type: tar.TypeSymlink, Link: sentinel},
			kilntest.TarEntry{Name: "x", Type: tar.TypeDir, Xattrs: map[string]string{"user.evil": "1"}}),
	}
}

func TestApplyHostile(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, ow := range []bool{false, true} {
		for name := range hostileTars(t, "/sentinel") {
			t.Run(name, func(t *testing.T) {
				j := newJail(t)
				data := hostileTars(t, j.sentinel)[name]
				_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{OverlayWhiteouts: ow})
				j.check(t)
				switch name {
				case "dotdot":
					must(t, err)
					if readString(t, filepath.Join(j.root, "evil")) != "dotdot" || !j.exists(t, "sentinel/evil2") {
						t.Error("../ names must land inside the target")
					}
				case "absolute":
					must(t, err)
					if readString(t, filepath.Join(j.root, "abs/evil")) != "abs" || !j.exists(t, strings.TrimPrefix(j.sentinel, "/")+"/evil") {
						t.Error("absolute names must land inside the target")
					}
				case "root-link", "up-link":
					must(t, err)
					if !j.exists(t, "evil") {
						t.Error("paths through symlinks must resolve inside the target")
					}
				case "chain-link":
					must(t, err)
					if !j.exists(t, "sentinel/evil") {
						t.Error("a/sentinel/evil should land at sentinel/evil inside the target")
					}
				case "abs-link", "rel-link", "hardlink", "hardlink-via-symlink":
					// The symlink target does not exist inside the
					// target, as under chroot: the entry fails.
					if err == nil || !strings.Contains(err.Error(), "entry \"") {
						t.Errorf("err = %v, want an error naming the entry", err)
					}
				case "proc-link":
					if err == nil {
						t.Error("a path through a /proc magic link must fail")
					}
				case "symlink-then-file":
					must(t, err)
					if readString(t, filepath.Join(j.root, "f")) != "replaces the symlink" {
						t.Error("file did not replace the symlink")
					}
				case "symlink-then-dir":
					must(t, err)
					if readString(t, filepath.Join(j.root, "d/x")) != "inside" {
						t.Error("directory did not replace the symlink")
					}
				case "whiteout-sentinel":
					must(t, err)
				case "xattr-through-link":
					must(t, err)
					if n, _ := unix.Lgetxattr(j.sentinel, "user.evil", nil); n > 0 {
						t.Error("xattr was set through a symlink")
					}
				default:
					t.Fatalf("no expectation for %s", name)
				}
			})
		}
	}
}

func TestApplyHardlinkInsideRoot(t *testing.T) {
	j := newJail(t)
	var before unix.Stat_t
	must(t, unix.Stat("/etc/passwd", &before))
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "etc/passwd", Body: "inner"},
		kilntest.TarEntry{Name: "hl", Type: tar.TypeLink, Link: "../../etc/passwd"},
		kilntest.TarEntry{Name: "abs", Type: tar.TypeLink, Link: "/etc/passwd"})
	_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
	must(t, err)
	j.check(t)
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(j.root, "hl"), &st))
	if st.Nlink != 3 || readString(t, filepath.Join(j.root, "abs")) != "inner" {
		t.Errorf("hardlinks should share the inner etc/passwd: nlink %d", st.Nlink)
	}
	var after unix.Stat_t
	must(t, unix.Stat("/etc/passwd", &after))
	if after.Nlink != before.Nlink || after.Ctim != before.Ctim {
		t.Error("host /etc/passwd was linked to")
	}
}

func TestApplyHardlinkMissingNamesEntry(t *testing.T) {
	j := newJail(t)
	data := kilntest.Tar(t, kilntest.TarEntry{Name: "dir/hl", Type: tar.TypeLink, Link: "nowhere"})
	_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), `entry "dir/hl"`) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ENOENT naming entry dir/hl", err)
	}
}

func TestApplyPlainWhiteouts(t *testing.T) {
	j := newJail(t)
	writeFile(t, j.root, "a/x", "x")
	writeFile(t, j.root, "a/y", "y")
	writeFile(t, j.root, "a/sub/deep", "deep")
	writeFile(t, j.root, "b/old", "old")
	writeFile(t, j.root, "b/keepdir/old", "old")
	writeFile(t, j.root, "c/same", "lower")
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "a/.wh.x"},
		kilntest.TarEntry{Name: "a/.wh.sub"},
		kilntest.TarEntry{Name: "a/.wh.missing"},
		kilntest.TarEntry{Name: "nodir/.wh.missing"},
		kilntest.TarEntry{Name: "b/keepdir/new", Body: "new"},
		kilntest.TarEntry{Name: "b/", Type: tar.TypeDir},
		kilntest.TarEntry{Name: "b/.wh..wh..opq"},
		kilntest.TarEntry{Name: "b/fresh", Body: "fresh"},
		kilntest.TarEntry{Name: "c/same", Body: "this layer"},
		kilntest.TarEntry{Name: "c/.wh.same"}, // hides lower layers only
		kilntest.TarEntry{Name: ".wh..wh.aufs"},
	)
	n, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
	must(t, err)
	if n != int64(len(data)) {
		t.Errorf("read %d bytes, want %d", n, len(data))
	}
	j.check(t)
	for rel, want := range map[string]bool{
		"a/x": false, "a/y": true, "a/sub": false, "b/old": false, "b/keepdir/old": false,
		"b/keepdir/new": true, "b/fresh": true, "c/same": true, "nodir": false,
		"a/.wh.x": false, "b/.wh..wh..opq": false, ".wh..wh.aufs": false,
	} {
		if got := j.exists(t, rel); got != want {
			t.Errorf("%s exists = %v, want %v", rel, got, want)
		}
	}
	if got := readString(t, filepath.Join(j.root, "c/same")); got != "this layer" {
		t.Errorf("c/same = %q", got)
	}
}

func TestApplyOverlayWhiteouts(t *testing.T) {
	j := newJail(t)
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "a/", Type: tar.TypeDir},
		kilntest.TarEntry{Name: "a/.wh.gone"},
		kilntest.TarEntry{Name: "o/", Type: tar.TypeDir},
		kilntest.TarEntry{Name: "o/.wh..wh..opq"},
		kilntest.TarEntry{Name: "implicit/.wh..wh..opq"},
	)
	_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{OverlayWhiteouts: true})
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(j.root, "a/gone"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("a/gone: mode %#o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
	}
	for _, d := range []string{"o", "implicit"} {
		v := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(j.root, d), overlayOpaqueXattr, v)
		if err != nil || string(v[:n]) != "y" {
			t.Errorf("%s: opaque xattr %q, %v", d, v[:n], err)
		}
	}
}

func TestApplyReplacesTypes(t *testing.T) {
	j := newJail(t)
	writeFile(t, j.root, "fileToDir", "f")
	writeFile(t, j.root, "dirToFile/child", "c")
	writeFile(t, j.root, "dirToDir/keep", "k")
	must(t, os.Symlink("/", filepath.Join(j.root, "linkToFile")))
	writeFile(t, j.root, "fileToLink", "f")
	writeFile(t, j.root, "fileToFile", "old")
	writeFile(t, j.root, "fileToHardlink", "old")
	writeFile(t, j.root, "fileToFifo", "old")
	must(t, os.Symlink("nowhere", filepath.Join(j.root, "danglingToDir")))
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "fileToDir/", Type: tar.TypeDir, Mode: 0o711},
		kilntest.TarEntry{Name: "dirToFile", Body: "now a file"},
		kilntest.TarEntry{Name: "dirToDir/", Type: tar.TypeDir, Mode: 0o700, UID: 3, GID: 4},
		kilntest.TarEntry{Name: "linkToFile", Body: "file"},
		kilntest.TarEntry{Name: "fileToLink", Type: tar.TypeSymlink, Link: "dirToDir"},
		kilntest.TarEntry{Name: "fileToFile", Body: "new"},
		kilntest.TarEntry{Name: "fileToHardlink", Type: tar.TypeLink, Link: "fileToFile"},
		kilntest.TarEntry{Name: "fileToFifo", Type: tar.TypeFifo, Mode: 0o600},
		kilntest.TarEntry{Name: "danglingToDir/", Type: tar.TypeDir, Mode: 0o755},
	)
	_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(j.root, "fileToDir"), &st))
	if st.Mode != unix.S_IFDIR|0o711 {
		t.Errorf("fileToDir mode %#o", st.Mode)
	}
	if readString(t, filepath.Join(j.root, "dirToFile")) != "now a file" {
		t.Error("dirToFile not replaced")
	}
	must(t, unix.Lstat(filepath.Join(j.root, "dirToDir"), &st))
	if st.Mode != unix.S_IFDIR|0o700 || st.Uid != 3 || st.Gid != 4 || !j.exists(t, "dirToDir/keep") {
		t.Errorf("dirToDir: mode %#o owner %d:%d, keep exists %v", st.Mode, st.Uid, st.Gid, j.exists(t, "dirToDir/keep"))
	}
	if readString(t, filepath.Join(j.root, "linkToFile")) != "file" {
		t.Error("linkToFile not replaced")
	}
	if target, err := os.Readlink(filepath.Join(j.root, "fileToLink")); err != nil || target != "dirToDir" {
		t.Errorf("fileToLink: %q, %v", target, err)
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(j.root, "fileToFile"), &a))
	must(t, unix.Lstat(filepath.Join(j.root, "fileToHardlink"), &b))
	if readString(t, filepath.Join(j.root, "fileToFile")) != "new" || a.Ino != b.Ino {
		t.Errorf("fileToFile/fileToHardlink: not the new file linked twice (inodes %d, %d)", a.Ino, b.Ino)
	}
	must(t, unix.Lstat(filepath.Join(j.root, "fileToFifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fileToFifo mode %#o", st.Mode)
	}
	must(t, unix.Lstat(filepath.Join(j.root, "danglingToDir"), &st))
	if st.Mode != unix.S_IFDIR|0o755 {
		t.Errorf("danglingToDir mode %#o", st.Mode)
	}
}

func TestApplyOwnershipModeTimes(t *testing.T) {
	j := newJail(t)
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "d/", Type: tar.TypeDir, Mode: 0o1777, UID: 5, GID: 6, Mtime: 1000},
		kilntest.TarEntry{Name: "d/suid", Body: "s", Mode: 0o4755, UID: 1000, GID: 1000, Mtime: 2000},
		kilntest.TarEntry{Name: "d/sgid", Body: "s", Mode: 0o2711, UID: 1000, GID: 1000, Mtime: 2000},
		kilntest.TarEntry{Name: "d/link", Type: tar.TypeSymlink, Link: "suid", UID: 9, GID: 9, Mtime: 3000},
		kilntest.TarEntry{Name: "d/fifo", Type: tar.TypeFifo, Mode: 0o620, Mtime: 4000},
		kilntest.TarEntry{Name: "d/cap", Body: "c", Xattrs: map[string]string{
			"security.capability":    "\x00\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"user.k":                 "v",
			"trusted.overlay.opaque": "y", // never taken from a tar
		}, UID: 1000, GID: 1000},
	)
	for _, chown := range []*IDPair{nil, {UID: 42, GID: 43}} {
		root := filepath.Join(j.root, "chown-nil")
		if chown != nil {
			root = filepath.Join(j.root, "chown-42")
		}
		must(t, os.Mkdir(root, 0o755))
		_, err := Apply(context.Background(), root, bytes.NewReader(data), ApplyOptions{Chown: chown})
		must(t, err)
		owner := func(uid, gid uint32) (uint32, uint32) {
			if chown != nil {
				return 42, 43
			}
			return uid, gid
		}
		for _, c := range []struct {
			rel      string
			mode     uint32
			uid, gid uint32
			mtime    int64
		}{
			{"d", unix.S_IFDIR | 0o1777, 5, 6, 1000},
			{"d/suid", unix.S_IFREG | 0o4755, 1000, 1000, 2000},
			{"d/sgid", unix.S_IFREG | 0o2711, 1000, 1000, 2000},
			{"d/link", unix.S_IFLNK | 0o777, 9, 9, 3000},
			{"d/fifo", unix.S_IFIFO | 0o620, 0, 0, 4000},
		} {
			var st unix.Stat_t
			must(t, unix.Lstat(filepath.Join(root, c.rel), &st))
			uid, gid := owner(c.uid, c.gid)
			if st.Mode != c.mode || st.Uid != uid || st.Gid != gid || st.Mtim.Sec != c.mtime {
				t.Errorf("chown %v: %s: mode %#o %d:%d mtime %d, want %#o %d:%d %d", chown, c.rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, c.mode, uid, gid, c.mtime)
			}
		}
		x := newXattrReader()
		list, err := x.list(filepath.Join(root, "d/cap"))
		must(t, err)
		if got := strings.Join(strings.Split(strings.TrimRight(string(list), "\x00"), "\x00"), ","); !strings.Contains(got, "security.capability") || !strings.Contains(got, "user.k") || strings.Contains(got, "overlay") {
			t.Errorf("d/cap xattrs %q", got)
		}
	}
	j.check(t)
}

func TestApplyRejectsBadInput(t *testing.T) {
	j := newJail(t)
	for name, data := range map[string][]byte{
		"self-link":   kilntest.Tar(t, kilntest.TarEntry{Name: "a", Body: "a"}, kilntest.TarEntry{Name: "a", Type: tar.TypeLink, Link: "a"}),
		"root-link":   kilntest.Tar(t, kilntest.TarEntry{Name: "a", Type: tar.TypeLink, Link: "/"}),
		"file-parent": kilntest.Tar(t, kilntest.TarEntry{Name: "f", Body: "f"}, kilntest.TarEntry{Name: "f/x", Body: "x"}),
		"truncated":   kilntest.Tar(t, kilntest.TarEntry{Name: "f", Body: strings.Repeat("x", 5000)})[:2048],
		"bad-xattr":   kilntest.Tar(t, kilntest.TarEntry{Name: "f", Xattrs: map[string]string{"security.capability": "garbage"}}),
	} {
		_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	j.check(t)
}

func TestApplyCountsTrailingBytes(t *testing.T) {
	j := newJail(t)
	data := append(kilntest.Tar(t, kilntest.TarEntry{Name: "f", Body: "f"}), make([]byte, 10240)...)
	r := &eofCounter{r: bytes.NewReader(data)}
	n, err := Apply(context.Background(), j.root, r, ApplyOptions{})
	must(t, err)
	if n != int64(len(data)) || !r.eof {
		t.Fatalf("read %d of %d bytes (EOF seen: %v)", n, len(data), r.eof)
	}
}

type eofCounter struct {
	r   io.Reader
	eof bool
}

func (e *eofCounter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

func TestApplyCanceled(t *testing.T) {
	j := newJail(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, j.root, bytes.NewReader(kilntest.Tar(t, kilntest.TarEntry{Name: "f"})), ApplyOptions{})
	if !errors.Is(err, context.Canceled) || j.exists(t, "f") {
		t.Fatalf("err = %v, want context.Canceled and nothing written", err)
	}
}

func TestApplyKeepsZerosSparse(t *testing.T) {
	j := newJail(t)
	zeros := strings.Repeat("\x00", 4<<20)
	data := kilntest.Tar(t,
		kilntest.TarEntry{Name: "middle", Body: "head" + zeros + "tail"},
		kilntest.TarEntry{Name: "trailing", Body: "head" + zeros},
		kilntest.TarEntry{Name: "allzero", Body: zeros},
	)
	_, err := Apply(context.Background(), j.root, bytes.NewReader(data), ApplyOptions{})
	must(t, err)
	for name, want := range map[string]string{"middle": "head" + zeros + "tail", "trailing": "head" + zeros, "allzero": zeros} {
		p := filepath.Join(j.root, name)
		if readString(t, p) != want {
			t.Errorf("%s: contents differ", name)
		}
		var st unix.Stat_t
		must(t, unix.Stat(p, &st))
		if st.Blocks*512 >= int64(len(zeros)) {
			t.Errorf("%s: %d bytes allocated for %d mostly zero bytes", name, st.Blocks*512, st.Size)
		}
	}
}
