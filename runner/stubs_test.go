package runner

import (
	"os"
	"path/filepath"
	"testing"
)

// A process that swapped a stub's parent for a symlink must not make the
// cleanup touch anything outside upper.
func TestCleanStubsIgnoresSymlinkedParents(t *testing.T) {
	base := t.TempDir()
	upper, outside := filepath.Join(base, "upper"), filepath.Join(base, "outside")
	for _, d := range []string{upper, outside, filepath.Join(outside, "d")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "hosts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(upper, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(upper, "proc")); err != nil {
		t.Fatal(err)
	}
	entries := []stubEntry{
		{Path: "/etc/hosts", Created: true},
		{Path: "/etc/d", Created: true, Dir: true},
		{Path: "/proc", Created: true, Dir: true},
		{Path: "/etc", Dir: true},
	}
	if err := cleanStubs(upper, entries); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hosts", "d"} {
		if _, err := os.Lstat(filepath.Join(outside, p)); err != nil {
			t.Errorf("cleanup reached outside upper: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(upper, "proc")); err != nil {
		t.Errorf("a symlink where a stub dir was is not a stub: %v", err)
	}
}

// Stubs that the process turned into something else stay.
func TestCleanStubsKeepsNonEmpty(t *testing.T) {
	upper := t.TempDir()
	if err := os.MkdirAll(filepath.Join(upper, "run/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "run/data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "hosts"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries := []stubEntry{
		{Path: "/run", Created: true, Dir: true},
		{Path: "/run/x", Created: true, Dir: true},
		{Path: "/hosts", Created: true},
	}
	if err := cleanStubs(upper, entries); err != nil {
		t.Fatal(err)
	}
	got := listTree(t, upper)
	want := []string{"hosts", "run", "run/data"}
	if len(got) != len(want) {
		t.Fatalf("upper = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("upper = %v, want %v", got, want)
		}
	}
}
