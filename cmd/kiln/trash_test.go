package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// lockTrash takes the trash lock of the store at root, as its deleter
// holds it: while it is held no deleter starts.
func lockTrash(t *testing.T, root string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, "trash.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func trashOf(t *testing.T, root string) []string {
	t.Helper()
	return kilntest.DirNames(t, filepath.Join(root, "trash"))
}

// copyRunContext is a context whose Dockerfile copies 500 files in ten
// directories (/files/dN, 50 each) and then runs a step writing /r.
func copyRunContext(t *testing.T) string {
	files := map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY files /files\nRUN echo built > /r\n",
	}
	for i := range 500 {
		files[fmt.Sprintf("files/d%d/f%d", i%10, i)] = fmt.Sprint(i)
	}
	return writeContext(t, files)
}

// TestBuildDoesNotWaitForTrash: a --no-cache rebuild makes its layers
// again, finds them in the store and leaves the copies to the trash: the
// build exits, its image whole, while the trash is still full (its deleter
// held off by the test holding the deleter's lock), and the next deleter
// empties it.
func TestBuildDoesNotWaitForTrash(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := copyRunContext(t)
	build := []string{"build", "-q", "--no-cache", "--source-date-epoch", "0", "-t", "app", ctx}
	want := strings.TrimSpace(e.kiln(build...))

	unlock := lockTrash(t, e.root)
	if got := strings.TrimSpace(e.kiln(build...)); got != want {
		t.Fatalf("rebuild gave image %s, first build %s", got, want)
	}
	// The COPY's duplicate waits; the RUN's, one file, went at once.
	if n := len(trashOf(t, e.root)); n != 1 {
		t.Fatalf("trash holds %d entries after the rebuild, want the COPY's duplicate snapshot", n)
	}
	if out := e.kiln("run", "--rm", "app", "sh", "-c", "cat /r; ls /files/d3 | wc -l"); strings.Fields(out)[0] != "built" || strings.Fields(out)[1] != "50" {
		t.Errorf("image of the rebuild: %q", out)
	}
	unlock()

	// The next duplicate starts a deleter, which deletes all there is.
	e.kiln(build...)
	lockTrash(t, e.root)()
	if left := trashOf(t, e.root); len(left) != 0 {
		t.Errorf("trash holds %v once its deleter is done", left)
	}
}

// TestRootlessTrash: rootless, the duplicates of a --no-cache rebuild
// (files of several owners of the user's range) are deleted by a deleter
// that runs as the rootless kiln does, in the user's namespaces.
func TestRootlessTrash(t *testing.T) {
	e := newRootlessEnv(t, true)
	e.importBase("localhost/bb:latest")
	ctx := multiOwnerContext(t, e.context)
	build := []string{"build", "-q", "--network", "none", "--no-cache", "--source-date-epoch", "0", "-t", "owners", ctx}
	want := e.kiln(build...)
	if got := e.kiln(build...); got != want {
		t.Fatalf("rebuild gave image %s, first build %s", got, want)
	}
	store := filepath.Join(e.u.Home, ".local/share/kiln")
	lockTrash(t, store)()
	if left := trashOf(t, store); len(left) != 0 {
		t.Errorf("trash holds %v once the rootless deleter is done", left)
	}
	if out := e.kiln("run", "--rm", "--network", "none", "owners", "sh", "-c", listOwners); out != multiOwnerListing {
		t.Errorf("owners in the rebuilt image:\n%s", out)
	}
}

// TestNoCacheCopyWritesNoDuplicate: a --no-cache rebuild of a COPY streams
// its layer tar before writing, finds the layer its last run made, and
// writes no copy of it: nothing goes to the trash (the RUN's duplicate, one
// file, is removed at once), and the COPY's layer is the first build's.
func TestNoCacheCopyWritesNoDuplicate(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := copyRunContext(t)
	// Past the stat cache's racy window: the rebuild finds every file's
	// digest there, as a rebuild of an unchanged context does.
	time.Sleep(1100 * time.Millisecond)
	copyLayer := func() string {
		id := strings.TrimSpace(e.kiln("build", "-q", "--no-cache", "-t", "app", ctx))
		return strings.Fields(e.kiln("inspect", "--format", `{{range .RootFS.Layers}}{{.}} {{end}}`, id))[1]
	}
	first := copyLayer()
	unlock := lockTrash(t, e.root) // no deleter empties the trash meanwhile
	defer unlock()
	if again := copyLayer(); again != first {
		t.Fatalf("rebuilt COPY layer %s, first build's %s", again, first)
	}
	if left := trashOf(t, e.root); len(left) != 0 {
		t.Errorf("trash holds %v after the rebuild: a duplicate was written", left)
	}
	if out := e.kiln("run", "--rm", "app", "sh", "-c", "cat /r; ls /files/d3 | wc -l"); strings.Fields(out)[0] != "built" || strings.Fields(out)[1] != "50" {
		t.Errorf("image of the rebuild: %q", out)
	}
}
