package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
)

// storeListing lists every path in the store with its size, to check that a
// failed command left the store exactly as it was. What earlier commands put
// in the store's trash is deleted first (waiting for the store's deleter),
// and the trash itself is not listed: it is no part of the store's content.
func storeListing(t *testing.T, root string) string {
	t.Helper()
	if err := cache.WaitTrash(root); err != nil {
		t.Fatalf("wait for the store's trash: %v", err)
	}
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if rel, _ := filepath.Rel(root, p); rel == "trash" || rel == "trash.lock" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(root, p)
		size := int64(0)
		if info != nil && info.Mode().IsRegular() {
			size = info.Size()
		}
		lines = append(lines, fmt.Sprintf("%s %d", rel, size))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestBuildBadInput(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "file.txt"), []byte("x"), 0o644)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(ctx, "escape"))

	cases := []struct {
		name, dockerfile string
		want             string // substring of the one-line error
	}{
		{"malformed", "FROM localhost/bb:latest\nENV\n", "Dockerfile:2: ENV requires at least one argument"},
		{"unknown instruction", "FROM localhost/bb:latest\nCOPPY file.txt /\n", "Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)"},
		{"missing source", "FROM localhost/bb:latest\nRUN echo hi > /x\nCOPY nope.txt /\n", `Dockerfile:3: COPY nope.txt: "/nope.txt" not found in the build context`},
		{"source outside context", "FROM localhost/bb:latest\nCOPY ../secret /\n", "Dockerfile:2: COPY ../secret: forbidden path outside the build context"},
		{"missing base", "FROM localhost/missing:1\nRUN true\n", "Dockerfile:1: FROM localhost/missing:1: image not found"},
		{"unknown user", "FROM localhost/bb:latest\nCOPY --chown=nobody2 file.txt /\n", "Dockerfile:2: COPY --chown=nobody2: unable to find user nobody2"},
		{"multiple sources need a dir", "FROM localhost/bb:latest\nCOPY file.txt file.txt /dst\n", "Dockerfile:2: COPY file.txt file.txt: when using COPY with more than one source file, the destination must be a directory and end with a /"},
		{"entitlement", "FROM localhost/bb:latest\nRUN --security=insecure true\n", "Dockerfile:2: RUN --security=insecure requires the entitlement security.insecure"},
		{"entitlement-network", "FROM localhost/bb:latest\nRUN --network=host true\n", "Dockerfile:2: RUN --network=host requires the entitlement network.host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := storeListing(t, e.root)
			r := e.run(c.dockerfile, "build", "-t", "bad:latest", "-f", "-", ctx)
			if r.code == 0 {
				t.Fatalf("build succeeded, want error %q", c.want)
			}
			msg := strings.TrimSpace(r.stderr)
			lines := strings.Split(msg, "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, c.want) {
				t.Errorf("error = %q, want it to contain %q", last, c.want)
			}
			if after := storeListing(t, e.root); after != before {
				t.Errorf("store changed by a failed build:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if r := e.run("", "inspect", "bad:latest"); r.code == 0 {
				t.Errorf("bad:latest was tagged")
			}
		})
	}
	t.Run("run fails", func(t *testing.T) {
		// A failing RUN is not bad input: as with docker, the steps before it
		// stay in the build cache, and nothing is tagged.
		df := "FROM localhost/bb:latest\nRUN echo ok > /ok\nRUN exit 3\n"
		r := e.run(df, "build", "-t", "bad:latest", "-f", "-", ctx)
		want := `Dockerfile:3: RUN exit 3: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
		}
		if r := e.run("", "inspect", "bad:latest"); r.code == 0 {
			t.Errorf("bad:latest was tagged")
		}
		fixed := "FROM localhost/bb:latest\nRUN echo ok > /ok\nRUN exit 0\n"
		r = e.run(fixed, "build", "--explain-cache", "-t", "fixed", "-f", "-", ctx)
		if r.code != 0 || !strings.Contains(r.stderr, "[2/3] RUN echo ok > /ok: cache hit") {
			t.Errorf("rebuild after the fix: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("unreadable context", func(t *testing.T) {
		r := e.run("FROM localhost/bb:latest\n", "build", "-f", "-", filepath.Join(ctx, "does-not-exist"))
		if r.code == 0 || !strings.Contains(r.stderr, "does-not-exist") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("escaping symlink", func(t *testing.T) {
		// A symlink in the context resolves inside the context, as with docker:
		// the target outside is never read.
		r := e.run("FROM localhost/bb:latest\nCOPY escape /\n", "build", "-f", "-", ctx)
		if r.code == 0 || !strings.Contains(r.stderr, "not found in the build context") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
