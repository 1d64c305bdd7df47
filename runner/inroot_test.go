package runner

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestResolveInRoot(t *testing.T) {
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
		got, err := resolveInRoot(root, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("resolveInRoot(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := resolveInRoot(root, "/loop1/x"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("loop: %v, want ELOOP", err)
	}
}
