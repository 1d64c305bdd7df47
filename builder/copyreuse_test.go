package builder

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// TestCopyReuseSameLayer: a re-run COPY with one file changed links the
// unchanged files from the previous run's snapshot, and its layer is byte
// for byte (same diffID) the layer a store without that snapshot makes;
// the previous snapshot is left as it was.
func TestCopyReuseSameLayer(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	e.write(map[string]string{
		"src/a.txt": "a\n", "src/sub/b.txt": "b\n", "src/sub/deep/c.txt": "c\n",
		"src/empty": "", "src/edit.txt": "v1\n", "src/run.sh": "#!/bin/sh\n",
	})
	mustOK(t, os.Chmod(filepath.Join(e.ctx, "src/run.sh"), 0o755))
	// Names of one inode in the context stay a hard link in the layer,
	// whether their previous copy is reused or not.
	mustOK(t, os.Link(filepath.Join(e.ctx, "src/a.txt"), filepath.Join(e.ctx, "src/sub/a-link.txt")))
	const df = "FROM localhost/bb:latest\nCOPY src /src\n"
	copyLayer := func(e *buildEnv) string {
		ids := e.image(e.mustBuild(df, Options{}).id).RootFS.DiffIDs
		return ids[len(ids)-1].String()
	}
	first := copyLayer(e)
	e.write(map[string]string{"src/edit.txt": "v2\n"})
	second := copyLayer(e)
	if first == second {
		t.Fatal("the edit did not change the COPY layer")
	}

	prevDir := e.store.SnapshotDir(digest.Digest(first))
	newDir := e.store.SnapshotDir(digest.Digest(second))
	for _, name := range []string{"sub/b.txt", "sub/deep/c.txt", "empty", "run.sh"} {
		if !sameInode(t, filepath.Join(prevDir, "src", name), filepath.Join(newDir, "src", name)) {
			t.Errorf("%s: not linked from the previous snapshot", name)
		}
	}
	if sameInode(t, filepath.Join(prevDir, "src/edit.txt"), filepath.Join(newDir, "src/edit.txt")) {
		t.Error("edit.txt: the changed file was linked")
	}
	for _, name := range []string{"a.txt", "sub/a-link.txt"} {
		if sameInode(t, filepath.Join(prevDir, "src", name), filepath.Join(newDir, "src", name)) {
			t.Errorf("%s: a hard link of the context was linked from the previous snapshot", name)
		}
	}
	// The previous snapshot still diffs to its own layer.
	res, err := layer.Write(context.Background(), io.Discard, prevDir, layer.Uncompressed, layer.DiffOptions{})
	mustOK(t, err)
	if res.DiffID.String() != first {
		t.Errorf("previous snapshot now diffs to %s, want %s", res.DiffID, first)
	}

	// A store that never saw the first run copies everything: same layer.
	fresh := newBuildEnv(t)
	fresh.ctx = e.ctx
	fresh.importBase("localhost/bb:latest")
	if got := copyLayer(fresh); got != second {
		t.Errorf("COPY layer with reuse %s, without %s: the tars differ", second, got)
	}
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	mustOK(t, unix.Lstat(a, &sa))
	mustOK(t, unix.Lstat(b, &sb))
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
