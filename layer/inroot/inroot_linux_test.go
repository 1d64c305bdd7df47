package inroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"abs":     "/a",
		"rel":     "a/b",
		"up":      "../../../..",
		"etc":     "/a/b/../../real-etc",
		"a/b/dot": "../..",
		"loop1":   "loop2",
		"loop2":   "loop1",
		"host":    "/etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	rootfd := openRoot(t, root)
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/a/b", "/a/b"},
		{"/abs/b/c", "/a/b/c"},
		{"/rel/../c", "/a/c"},
		{"/up/x", "/x"},
		{"/../../etc/hosts", "/real-etc/hosts"},
		{"/etc/hosts", "/real-etc/hosts"},
		{"/a/b/dot/abs", "/a"},
		{"/host", "/real-etc/passwd"}, // /etc is itself a symlink in this root
		{"/a/../../b", "/b"},
		{"/missing/../a//./b/", "/a/b"},
	} {
		got, err := Resolve(rootfd, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Resolve(rootfd, "/loop1/x"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v, want ELOOP", err)
	}
}

func TestMkdirAllStaysInRoot(t *testing.T) {
	root, host := t.TempDir(), t.TempDir()
	if err := os.Symlink(host, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	// The link's target exists inside the root too (a dangling link is an
	// existing non-directory: an error, as before).
	if err := os.MkdirAll(filepath.Join(root, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rootfd := openRoot(t, root)
	var made []string
	fd, created, err := MkdirAll(rootfd, "/escape/x/y", 0o755, func(pfd int, name, p string) error {
		made = append(made, p)
		return nil
	})
	if err != nil || !created {
		t.Fatalf("MkdirAll = %v, %v", created, err)
	}
	unix.Close(fd)
	if got := strings.Join(made, " "); got != "/escape/x /escape/x/y" {
		t.Errorf("made %s", got)
	}
	if fi, err := os.Stat(filepath.Join(root, host, "x/y")); err != nil || !fi.IsDir() {
		t.Errorf("not created inside the root: %v", err)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Errorf("created on the host: %v", ents)
	}
	fd, created, err = MkdirAll(rootfd, "/escape/x", 0o755, nil)
	if err != nil || created {
		t.Fatalf("existing: %v, %v", created, err)
	}
	unix.Close(fd)
	if _, _, err := MkdirAll(rootfd, "/file/sub", 0o755, nil); err == nil || !strings.Contains(err.Error(), "mkdir /file: not a directory") {
		t.Errorf("under a file: %v", err)
	}
}

func TestRel(t *testing.T) {
	for in, want := range map[string]string{"/": ".", "": ".", "/a/../b/": "b", "../../x": "x", "a//b": "a/b"} {
		if got := Rel(in); got != want {
			t.Errorf("Rel(%q) = %q, want %q", in, got, want)
		}
	}
}
