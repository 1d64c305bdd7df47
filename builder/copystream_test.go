package builder

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// TestCopyStreamedLayer: a COPY's layer tar, streamed while the files are
// copied, is taken (not diffed again) and is byte for byte the tar the
// differ makes of the committed snapshot, for trees with hard links,
// symlinks, xattrs, odd and long names, empty directories, special files,
// with --chown and --chmod, into a new, an existing and the root directory.
func TestCopyStreamedLayer(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	long := strings.Repeat("l", 120)
	e.write(map[string]string{
		"src/a.txt": "a\n", "src/sub/b.txt": "b\n", "src/sub/deep/c.txt": strings.Repeat("c", 70000),
		"src/empty": "", "src/sp ace/ünï cödé": "u\n", "src/" + long + "/" + long + "/f": "long\n",
		"src/run.sh": "#!/bin/sh\n", "src/xattr.txt": "x\n",
	})
	ctx := func(p string) string { return filepath.Join(e.ctx, "src", p) }
	mustOK(t, os.Chmod(ctx("run.sh"), 0o4755))
	mustOK(t, os.Link(ctx("a.txt"), ctx("sub/a-link.txt")))
	mustOK(t, os.Link(ctx("a.txt"), ctx("sub/deep/a-link2.txt")))
	mustOK(t, os.Symlink("../a.txt", ctx("sub/rel-link")))
	mustOK(t, os.Symlink("/nowhere/at/all", ctx("dangling")))
	mustOK(t, os.MkdirAll(ctx("empty-dir/nested-empty"), 0o700))
	mustOK(t, unix.Mkfifo(ctx("fifo"), 0o600))
	if err := unix.Lsetxattr(ctx("xattr.txt"), "user.kiln", []byte("v"), 0); err != nil && err != unix.ENOTSUP {
		t.Fatal(err)
	}
	// Past the stat cache's racy window: a re-run finds every file's
	// digest there, as a re-run of an unchanged context does.
	time.Sleep(1100 * time.Millisecond)

	for _, tc := range []struct {
		name, df string
		// madeNow: the step makes a directory (/opt by the COPY, /w by
		// the WORKDIR), which has the build's time (whole seconds in the
		// tar): a re-run in another second makes another layer.
		madeNow bool
	}{
		{"new directory", "COPY src /src", false},
		{"chown and chmod", "COPY --chown=3000000:123 --chmod=640 src /opt/dst/", true},
		{"into an existing directory", "COPY --chmod=u+x src /etc/", false},
		{"into a workdir", "WORKDIR /w\nCOPY src sub/", true},
		{"the root", "COPY src /", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			opts := Options{NoCache: true, Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			ids := e.image(e.mustBuild("FROM localhost/bb:latest\n"+tc.df+"\n", opts).id).RootFS.DiffIDs
			diffID := ids[len(ids)-1]
			if !strings.Contains(log.String(), "diffID="+diffID.String()+" taken=true") {
				t.Errorf("the streamed layer was not taken:\n%s", log.String())
			}
			res, err := layer.Write(context.Background(), io.Discard, e.store.SnapshotDir(diffID), layer.Uncompressed, layer.DiffOptions{})
			mustOK(t, err)
			if res.DiffID != diffID {
				t.Errorf("COPY layer %s, the differ makes %s of its snapshot", diffID, res.DiffID)
			}

			if tc.madeNow {
				return
			}
			// Run again, the streamed tar is found in the store: the
			// step takes that layer and writes no copy of it.
			log.Reset()
			again := e.image(e.mustBuild("FROM localhost/bb:latest\n"+tc.df+"\n", opts).id).RootFS.DiffIDs
			if again[len(again)-1] != diffID {
				t.Errorf("re-run COPY layer %s, the first run made %s", again[len(again)-1], diffID)
			}
			if !strings.Contains(log.String(), `msg="existing layer" diffID=`+diffID.String()) || strings.Contains(log.String(), "streamed layer") {
				t.Errorf("the re-run did not take the existing layer without writing:\n%s", log.String())
			}
		})
	}
}

// TestCopyNoCacheExistingLayerChecked: a --no-cache re-run of a COPY takes
// the layer its last run made only when today's context gives that very
// tar, checked, not trusted: a file changed in place (same size and mtime)
// with a stat cache that still gives its old digest makes a new layer with
// the new bytes, and a layer whose snapshot no longer has the streamed
// metadata is not taken (the files are copied again).
func TestCopyNoCacheExistingLayerChecked(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	e.write(map[string]string{"src/a.txt": "aaaa\n", "src/sub/b.txt": "b\n"})
	const df = "FROM localhost/bb:latest\nCOPY src /src\n"
	var log bytes.Buffer
	opts := Options{NoCache: true, Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	top := func(id digest.Digest) digest.Digest {
		ids := e.image(id).RootFS.DiffIDs
		return ids[len(ids)-1]
	}
	first := top(e.mustBuild(df, opts).id)

	a := filepath.Join(e.ctx, "src", "a.txt")
	fi, err := os.Stat(a)
	mustOK(t, err)
	rewrite := func(content string) {
		mustOK(t, os.WriteFile(a, []byte(content), 0o644))
		mustOK(t, os.Chtimes(a, fi.ModTime(), fi.ModTime()))
		// Past the stat cache's racy window: what it holds is trusted.
		time.Sleep(1100 * time.Millisecond)
	}
	rewrite("AAAA\n")
	// The stat cache lies: a.txt has its old digest.
	var st unix.Stat_t
	mustOK(t, unix.Lstat(a, &st))
	sc := e.store.StatCache(e.ctx)
	sc.Add(a, &st, digest.FromString("aaaa\n"))
	mustOK(t, sc.Save())
	log.Reset()
	id := e.mustBuild(df, opts).id
	if top(id) == first || strings.Contains(log.String(), "existing layer") {
		t.Errorf("a changed file's COPY took the layer of the old content %s:\n%s", first, log.String())
	}
	if got := e.catFile(id, "/src/a.txt"); got != "AAAA\n" {
		t.Errorf("/src/a.txt = %q, want the new content", got)
	}

	// The old content again (a copy, whose stat the stat cache learns),
	// then a rebuild, the old layer's snapshot having another mode now.
	rewrite("aaaa\n")
	e.mustBuild(df, opts)
	mustOK(t, os.Chmod(filepath.Join(e.store.SnapshotDir(first), "src", "a.txt"), 0o600))
	log.Reset()
	id = e.mustBuild(df, opts).id
	if strings.Contains(log.String(), "existing layer") {
		t.Errorf("a layer whose snapshot differs from the stream was taken:\n%s", log.String())
	}
	if top(id) != first || !strings.Contains(log.String(), `msg="streamed layer" diffID=`+first.String()+" taken=true") {
		t.Errorf("the files were not copied again into a layer of diffID %s:\n%s", first, log.String())
	}
}
