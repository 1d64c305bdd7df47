package runner

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// A binary whose directory holds the fallback empty layer (here the runtime
// directory itself, as a binary in / or next to XDG_RUNTIME_DIR's parent)
// is still sealed by an overlay: the layers must not overlap, and before
// the empty layer was a tmpfs of its own overlay refused them (ELOOP) and
// kiln copied itself into a memfd for every command.
func TestSealedOverlayOverlappingRuntimeDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlay needs root")
	}
	probe := t.TempDir()
	if err := os.WriteFile(filepath.Join(probe, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty, err := emptyLayer()
	if err == nil {
		var fd int
		fd, err = overlayOpen(probe+":/proc/self/fd/"+strconv.Itoa(empty), "f")
		unix.Close(empty)
		unix.Close(fd)
	}
	if err != nil {
		t.Skipf("this kernel takes no detached tmpfs as an overlay layer (before Linux 6.15): %v", err)
	}
	dir := rootless.RuntimeDir()
	if err := os.MkdirAll(sealedExeLower(), 0o700); err != nil {
		t.Fatal(err)
	}
	name := "seal-test-" + strconv.Itoa(os.Getpid())
	want := []byte("#!/bin/sh\necho sealed\n")
	if err := os.WriteFile(filepath.Join(dir, name), want, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(dir, name)) })

	fd, err := sealedOverlay(dir, name)
	if err != nil {
		t.Fatalf("sealedOverlay(%s, %s): %v", dir, name, err)
	}
	defer unix.Close(fd)
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if ok, err := isSealedExe(p); err != nil || !ok {
		t.Fatalf("isSealedExe(%s) = %v, %v; want a read-only overlay", dir+"/"+name, ok, err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read through the seal: %q, %v; want %q", got, err, want)
	}
	if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatal("the sealed binary opened for writing")
	} else if !errors.Is(err, unix.EROFS) {
		t.Fatalf("open the sealed binary for writing: %v; want EROFS", err)
	}
}
