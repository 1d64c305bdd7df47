package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// TestBuildContextInputs: contexts from stdin (a tar, gzipped or not; a
// Dockerfile alone), hostile tars that try to write outside, Git
// repositories over file:// (branch, tag, commit, subdirectory), and named
// contexts (a directory, docker-image://, target:). Nothing made for a
// context outlives its build.
func TestBuildContextInputs(t *testing.T) {
	e := newEnv(t)
	kilntest.NeedTool(t, "git")
	e.importBase("localhost/bb:latest")
	out := t.TempDir()
	cat := func(img, path string) string { // a file of an image, through -o local
		t.Helper()
		dir := filepath.Join(out, strings.NewReplacer(":", "_", "/", "_").Replace(img))
		os.RemoveAll(dir)
		e.kiln("build", "-q", "-o", "type=local,dest="+dir, "--build-context", "it=docker-image://"+img, writeContext(t, map[string]string{"Dockerfile": "FROM it\n"}))
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("%s: %v", img, err)
		}
		return string(b)
	}

	// stdin: a tar, plain and gzipped, with -f naming a file inside it.
	ctxTar := kilntest.Tar(t,
		kilntest.TarEntry{Name: "Dockerfile", Body: "FROM localhost/bb\nCOPY f /f\n"},
		kilntest.TarEntry{Name: "sub/", Type: tar.TypeDir},
		kilntest.TarEntry{Name: "sub/alt.Dockerfile", Body: "FROM localhost/bb\nCOPY sub/g /g\n"},
		kilntest.TarEntry{Name: "f", Body: "plain\n"},
		kilntest.TarEntry{Name: "sub/g", Body: "from sub\n"})
	if r := e.run(string(ctxTar), "build", "-t", "stdin:plain", "-"); r.code != 0 {
		t.Fatalf("build - < tar: exit %d\n%s", r.code, r.stderr)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ctxTar)
	zw.Close()
	if r := e.run(gz.String(), "build", "-t", "stdin:gz", "-f", "sub/alt.Dockerfile", "-"); r.code != 0 {
		t.Fatalf("build -f sub/alt.Dockerfile - < tar.gz: exit %d\n%s", r.code, r.stderr)
	}
	if got := cat("stdin:plain", "f") + cat("stdin:gz", "g"); got != "plain\nfrom sub\n" {
		t.Errorf("stdin contexts gave %q", got)
	}
	// A Dockerfile alone: an empty context.
	if r := e.run("FROM localhost/bb\nRUN echo only > /only\n", "build", "-t", "stdin:df", "-"); r.code != 0 {
		t.Fatalf("build - < Dockerfile: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run("FROM localhost/bb\nCOPY f /f\n", "build", "-"); r.code == 0 || !strings.Contains(r.stderr, "f") {
		t.Errorf("COPY from the empty context of a stdin Dockerfile: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run(string(ctxTar), "build", "-f", "-", "-"); r.code == 0 || !strings.Contains(r.stderr, "stdin cannot be both") {
		t.Errorf("-f - with context -: exit %d\n%s", r.code, r.stderr)
	}

	// Hostile tars: ../ names, absolute names, a symlink out and a file
	// through it all land inside the context; a Dockerfile that is a
	// symlink to a host file is not read.
	outside := t.TempDir()
	evil := kilntest.Tar(t,
		kilntest.TarEntry{Name: "Dockerfile", Body: "FROM localhost/bb\nCOPY . /ctx/\n"},
		kilntest.TarEntry{Name: "../../../../escape-rel", Body: "x"},
		kilntest.TarEntry{Name: filepath.Join(outside, "escape-abs"), Body: "x"},
		kilntest.TarEntry{Name: "link", Type: tar.TypeSymlink, Link: outside},
		kilntest.TarEntry{Name: "link/planted", Body: "x"})
	if r := e.run(string(evil), "build", "-t", "evil", "-"); r.code != 0 {
		t.Fatalf("build - < hostile tar: exit %d\n%s", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a context tar wrote outside its directory: %v", ents)
	}
	if found := mustRun(t, "find", filepath.Dir(e.root), "-name", "escape-*", "-not", "-path", e.root+"/layers/*"); strings.TrimSpace(found) != "" {
		t.Errorf("escaped entries:\n%s", found)
	}
	if got := cat("evil", "ctx"+outside+"/planted"); got != "x" {
		t.Errorf("planted file not kept inside the context: %q", got)
	}
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("RUN echo leaked\n"), 0o600)
	linked := kilntest.Tar(t, kilntest.TarEntry{Name: "Dockerfile", Type: tar.TypeSymlink, Link: secret})
	if r := e.run(string(linked), "build", "-"); r.code == 0 || !strings.Contains(r.stderr, "Dockerfile") || strings.Contains(r.stderr, "leaked") {
		t.Errorf("a Dockerfile symlinked out of the context: exit %d\n%s", r.code, r.stderr)
	}
	os.Remove(secret)

	// Git: a bare repository over file://, by branch, tag and commit, with a subdirectory.
	src, bare := filepath.Join(out, "src"), filepath.Join(out, "repo.git")
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	os.MkdirAll(filepath.Join(src, "app"), 0o755)
	os.WriteFile(filepath.Join(src, "app", "Dockerfile"), []byte("FROM localhost/bb\nCOPY v /v\n"), 0o644)
	os.WriteFile(filepath.Join(src, "app", "v"), []byte("one\n"), 0o644)
	git(src, "init", "-q")
	git(src, "add", ".")
	git(src, "commit", "-qm", "one")
	git(src, "tag", "v1")
	first := git(src, "rev-parse", "HEAD")
	os.WriteFile(filepath.Join(src, "app", "v"), []byte("two\n"), 0o644)
	git(src, "commit", "-qam", "two")
	git(out, "clone", "-q", "--bare", src, bare)
	for ref, want := range map[string]string{"main": "two\n", "v1": "one\n", first: "one\n"} {
		name := "git:" + strings.NewReplacer(".", "").Replace(ref[:min(len(ref), 12)])
		if r := e.run("", "build", "-t", name, "file://"+bare+"#"+ref+":app"); r.code != 0 {
			t.Fatalf("build file://%s#%s:app: exit %d\n%s", bare, ref, r.code, r.stderr)
		}
		if got := cat(name, "v"); got != want {
			t.Errorf("git context #%s: v = %q, want %q", ref, got, want)
		}
	}
	for _, bad := range []string{"#nosuchref:app", "#main:nosuchdir", "#main:app/v"} {
		if r := e.run("", "build", "file://"+bare+bad); r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("git context %s: exit %d\n%s", bad, r.code, r.stderr)
		}
	}

	// Named contexts: target:STAGE as a FROM, a directory and an image for COPY --from.
	// An OCI layout (written by -o type=oci,tar=false) is one too.
	files := writeContext(t, map[string]string{"data.txt": "named dir\n"})
	layout := filepath.Join(out, "layout")
	e.kiln("build", "-t", "layout:v1", "-o", "type=oci,tar=false,dest="+layout, writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY data.txt /from-layout\n", "data.txt": "from a layout\n"}))
	named := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb AS base\nRUN echo base > /base\nFROM alias\nCOPY --from=files /data.txt /data.txt\nCOPY --from=img /bin/busybox /bb-copy\nCOPY --from=lay /from-layout /from-layout\n"})
	e.kiln("build", "-t", "named", "--build-context", "alias=target:base", "--build-context", "files="+files, "--build-context", "img=docker-image://localhost/bb:latest", "--build-context", "lay=oci-layout://"+layout+":v1", named)
	if got := cat("named", "base") + cat("named", "data.txt") + cat("named", "from-layout"); got != "base\nnamed dir\nfrom a layout\n" {
		t.Errorf("named contexts gave %q", got)
	}
	if images := e.kiln("images"); strings.Contains(images, "layout") {
		t.Errorf("oci-layout:// named an image in the store:\n%s", images)
	}
	if r := e.run("", "build", "--build-context", "lay=oci-layout://"+layout+":nosuchtag", named); r.code == 0 || !strings.Contains(r.stderr, `no image tagged "nosuchtag"`) {
		t.Errorf("oci-layout with a missing tag: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run("", "build", "--build-context", "base="+files, writeContext(t, map[string]string{"Dockerfile": "FROM base\n"})); r.code == 0 || !strings.Contains(r.stderr, "is a directory") {
		t.Errorf("FROM a directory context: exit %d\n%s", r.code, r.stderr)
	}

	// Every context directory made from stdin or Git is gone, and the
	// store keeps no stat cache for them: only the two local contexts
	// this test COPYs with (the layout's, and the named contexts' build,
	// whose COPY --from hashes through it) have one.
	if ents, _ := os.ReadDir(filepath.Join(e.root, "statcache")); len(ents) > 2 {
		t.Errorf("%d stat caches, want 2: stdin and Git contexts left theirs", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(ents) != 0 {
		var names []string
		for _, x := range ents {
			names = append(names, x.Name())
		}
		t.Errorf("left in the store's tmp: %v", names)
	}
}
