package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// richTree builds a plain directory exercising every entry kind.
func richTree(t testing.TB) string {
	t.Helper()
	kilntest.RequireRoot(t)
	root := t.TempDir()
	writeFile(t, root, "a/file", "hello")
	writeFile(t, root, "a-b", "sorts after a/ when walking per directory")
	writeFile(t, root, "a/empty", "")
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7) // > copy buffer
	must(t, os.WriteFile(filepath.Join(root, "big"), big, 0o600))
	must(t, os.Link(filepath.Join(root, "a/file"), filepath.Join(root, "z-link1")))
	must(t, os.Link(filepath.Join(root, "a/file"), filepath.Join(root, "b-link0")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "abs-sym")))
	must(t, os.Symlink("big", filepath.Join(root, "sym")))
	must(t, os.Link(filepath.Join(root, "sym"), filepath.Join(root, "sym-hardlink")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(t, unix.Mknod(filepath.Join(root, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 1))))
	long := strings.Repeat("long-name-", 12)
	writeFile(t, root, long+"/"+long, "long")
	writeFile(t, root, "ünïcödé", "utf-8 name")
	writeFile(t, root, "caps", "cap")
	setXattr(t, filepath.Join(root, "caps"), "user.b", "2")
	setXattr(t, filepath.Join(root, "caps"), "user.a", "1")
	setXattr(t, filepath.Join(root, "caps"), "trusted.kiln", "t")
	// security.capability v2 for cap_net_bind_service, binary with NULs.
	setXattr(t, filepath.Join(root, "caps"), "security.capability", "\x00\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	setXattr(t, filepath.Join(root, "a"), "user.dir", "d")
	setXattr(t, filepath.Join(root, "a"), "trusted.overlay.origin", "dropped")
	must(t, unix.Chmod(filepath.Join(root, "a"), 0o2775))
	must(t, os.Lchown(filepath.Join(root, "sym"), 7, 8))
	must(t, os.Chtimes(filepath.Join(root, "big"), time.Unix(1e9, 123456789), time.Unix(1e9, 987654321)))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	defer unix.Close(sock)
	must(t, unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(root, "sock")}))
	return root
}

func TestWriteDiffDeterministic(t *testing.T) {
	root := richTree(t)
	first := writeDiffBytes(t, root, DiffOptions{})
	second := writeDiffBytes(t, root, DiffOptions{})
	if !bytes.Equal(first, second) {
		t.Fatal("two WriteDiff runs over the same directory differ")
	}

	entries := readEntries(t, first, true)
	var names []string
	byName := map[string]entry{}
	for _, e := range entries {
		names = append(names, e.Name)
		byName[e.Name] = e
	}
	long := strings.Repeat("long-name-", 12)
	wantNames := []string{
		"a/", "a/empty", "a/file", "a-b", "abs-sym", "b-link0", "big", "blk", "caps", "fifo",
		long + "/", long + "/" + long, "sym", "sym-hardlink", "z-link1", "ünïcödé",
	}
	if strings.Join(names, "\n") != strings.Join(wantNames, "\n") {
		t.Fatalf("entry order:\n got  %q\n want %q", names, wantNames)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"a/ setgid and xattrs", byName["a/"].Mode == 0o2775 && byName["a/"].Xattrs == "user.dir=d"},
		{"first hardlink name is the file", byName["a/file"].Type == tar.TypeReg && byName["a/file"].Size == 5},
		{"later names link to it", byName["b-link0"].Type == tar.TypeLink && byName["b-link0"].Link == "a/file" && byName["z-link1"].Link == "a/file"},
		{"hardlinked symlink", byName["sym"].Type == tar.TypeSymlink && byName["sym-hardlink"].Type == tar.TypeLink && byName["sym-hardlink"].Link == "sym"},
		{"symlink owner", byName["sym"].UID == 7 && byName["sym"].GID == 8 && byName["sym"].Link == "big"},
		{"block device", byName["blk"].Type == tar.TypeBlock && byName["blk"].Dev == [2]int64{8, 1}},
		{"whole-second mtime", byName["big"].Mtime == 1e9 && byName["big"].Size == int64(len(bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7)))},
		{"xattrs", byName["caps"].Xattrs == "security.capability=\x00\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00,trusted.kiln=t,user.a=1,user.b=2"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong entries %v", c.name, entries)
		}
	}

	// Round trip through Apply yields the same bytes again.
	dst := t.TempDir()
	_, err := Apply(context.Background(), dst, bytes.NewReader(first), ApplyOptions{})
	must(t, err)
	if again := writeDiffBytes(t, dst, DiffOptions{}); !bytes.Equal(again, first) {
		compareEntries(t, readEntries(t, again, true), entries)
		t.Fatal("WriteDiff(Apply(tar)) differs in encoding")
	}
}

func TestWriteDiffSourceDateEpoch(t *testing.T) {
	kilntest.RequireRoot(t)
	root := t.TempDir()
	writeFile(t, root, "new", "n")
	writeFile(t, root, "old", "o")
	must(t, os.Chtimes(filepath.Join(root, "old"), time.Unix(100, 0), time.Unix(100, 0)))
	epoch := time.Unix(5000, 999)
	got := readEntries(t, writeDiffBytes(t, root, DiffOptions{SourceDateEpoch: &epoch}), true)
	if len(got) != 2 || got[0].Mtime != 5000 || got[1].Mtime != 100 {
		t.Fatalf("mtimes not clamped to 5000: %+v", got)
	}
}

func TestWriteDiffRefusesRedirectAndMetacopy(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, name := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy", "user.overlay.redirect"} {
		root := t.TempDir()
		writeFile(t, root, "d/f", "f")
		setXattr(t, filepath.Join(root, "d"), name, "/elsewhere")
		err := WriteDiff(context.Background(), &bytes.Buffer{}, root, DiffOptions{})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}

func TestWriteDiffUserOverlayOpaque(t *testing.T) {
	kilntest.RequireRoot(t)
	root := t.TempDir()
	writeFile(t, root, "d/f", "f")
	setXattr(t, filepath.Join(root, "d"), "user.overlay.opaque", "y")
	must(t, os.MkdirAll(filepath.Join(root, "notopaque"), 0o755))
	setXattr(t, filepath.Join(root, "notopaque"), "trusted.overlay.opaque", "x")
	var names []string
	for _, e := range readEntries(t, writeDiffBytes(t, root, DiffOptions{}), false) {
		names = append(names, e.Name+"|"+e.Xattrs)
	}
	want := "d/|\nd/.wh..wh..opq|\nd/f|\nnotopaque/|"
	if got := strings.Join(names, "\n"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWriteDiffCanceled(t *testing.T) {
	root := richTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteDiff(ctx, &bytes.Buffer{}, root, DiffOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
