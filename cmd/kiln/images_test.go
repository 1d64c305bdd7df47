package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeContext makes a build context from name → content (a Dockerfile included).
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImportFormats(t *testing.T) {
	e := newEnv(t)
	baseTar := e.importBase("localhost/bb:plain")
	want := strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", "localhost/bb:plain"))
	data, err := os.ReadFile(baseTar)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// gzip
	gz := filepath.Join(dir, "base.tar.gz")
	mustRun(t, "sh", "-c", "gzip -c "+baseTar+" > "+gz)
	// zstd
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	zw.Write(data)
	zw.Close()
	zst := filepath.Join(dir, "base.tar.zst")
	os.WriteFile(zst, zbuf.Bytes(), 0o644)
	// a directory
	rootfs := filepath.Join(dir, "rootfs")
	os.Mkdir(rootfs, 0o755)
	mustRun(t, "tar", "-C", rootfs, "-xf", baseTar)

	for _, src := range []string{gz, zst, rootfs} {
		e.kiln("import", src, "localhost/bb:other")
		if got := strings.TrimSpace(e.kiln("inspect", "--format", "{{.RootFS.Layers}}", "localhost/bb:other")); got != strings.TrimSpace(e.kiln("inspect", "--format", "{{.RootFS.Layers}}", "localhost/bb:plain")) {
			t.Errorf("import %s: layers %s differ from the plain tar's", filepath.Base(src), got)
		}
	}
	// stdin
	r := e.run(string(data), "import", "-", "localhost/bb:stdin")
	if r.code != 0 {
		t.Fatalf("import -: %s", r.stderr)
	}
	if id := strings.TrimSpace(r.stdout); !strings.HasPrefix(id, "sha256:") {
		t.Errorf("import printed %q", id)
	}
	_ = want
	// A file that is not a tar is refused, naming it, and nothing is stored.
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, []byte("this is not a tar archive, not at all, not even close to one......"), 0o644)
	before := storeListing(t, e.root)
	if r := e.run("", "import", bad, "localhost/bad"); r.code == 0 || !strings.Contains(r.stderr, "bad.tar") {
		t.Errorf("import of a non-tar: exit %d, %q", r.code, r.stderr)
	}
	if after := storeListing(t, e.root); after != before {
		t.Errorf("failed import changed the store")
	}
}

func TestImagesHistoryInspectTagRmi(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nLABEL a=b\nRUN echo hello > /hello\nCMD [\"cat\", \"/hello\"]\n",
	})
	id := strings.TrimSpace(e.kiln("build", "-q", "-t", "app:1", ctx))

	images := e.kiln("images")
	if !strings.HasPrefix(images, "REPOSITORY") || !strings.Contains(images, "app ") || !strings.Contains(images, id[7:19]) {
		t.Errorf("images:\n%s", images)
	}
	hist := e.kiln("history", "app:1")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "IMAGE") || !strings.Contains(lines[1], `CMD ["cat" "/hello"]`) ||
		!strings.Contains(lines[2], "RUN /bin/sh -c echo hello > /hello") || !strings.Contains(lines[2], "6B") {
		t.Errorf("history:\n%s", hist)
	}
	if got := e.kiln("inspect", "--format", "{{.Config.Labels.a}} {{json .Config.Cmd}} {{.Os}}/{{.Architecture}}", "app:1"); got != "b [\"cat\",\"/hello\"] linux/amd64\n" {
		t.Errorf("inspect --format: %q", got)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(e.kiln("inspect", id)), &objs); err != nil || len(objs) != 1 || objs[0]["Id"] != id {
		t.Errorf("inspect JSON: %v %v", err, objs)
	}
	e.kiln("tag", "app:1", "registry.example/team/app:2")
	if !strings.Contains(e.kiln("images"), "registry.example/team/app") {
		t.Error("tag not listed")
	}
	// rmi of one name of two only untags.
	if out := e.kiln("rmi", "app:1"); !strings.Contains(out, "Untagged: app:1") || strings.Contains(out, "Deleted") {
		t.Errorf("rmi app:1: %s", out)
	}
	if out := e.kiln("rmi", "registry.example/team/app:2"); !strings.Contains(out, "Deleted: "+id) {
		t.Errorf("rmi last name: %s", out)
	}
	if r := e.run("", "inspect", id); r.code == 0 {
		t.Error("image still there after rmi")
	}
	// Its layer is gone, the base's stays.
	if r := e.run("", "history", "localhost/bb:latest"); r.code != 0 {
		t.Errorf("base image damaged: %s", r.stderr)
	}
	if r := e.run("", "rmi", "nope:1"); r.code == 0 || !strings.Contains(r.stderr, "no such image: nope:1") {
		t.Errorf("rmi unknown: %d %q", r.code, r.stderr)
	}
	if out := e.kiln("info"); !strings.Contains(out, "Storage Driver: overlay2") || !strings.Contains(out, "Store Root: "+e.root) {
		t.Errorf("info:\n%s", out)
	}
}

// TestSaveLoadRoundTrip: a built image saved (lazily compressing its layers)
// loads into an empty store with the same ID; saving twice gives the same
// bytes; zstd layers are honoured; docker-archive output loads too.
func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY data /data\nRUN ln /data/f /data/hard && mkfifo /data/fifo && rm /bin/vi\n",
		"data/f":     strings.Repeat("kiln ", 10000),
	})
	for _, c := range []struct{ compression, mediaType string }{{"gzip", ocispec.MediaTypeImageLayerGzip}, {"zstd", ocispec.MediaTypeImageLayerZstd}} {
		t.Run(c.compression, func(t *testing.T) {
			id := strings.TrimSpace(e.kiln("build", "-q", "--compression", c.compression, "-t", "rt:"+c.compression, ctx))
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
			e.kiln("save", "-o", a, "rt:"+c.compression)
			e.kiln("save", "-o", b, "rt:"+c.compression)
			da, _ := os.ReadFile(a)
			db, _ := os.ReadFile(b)
			if !bytes.Equal(da, db) {
				t.Fatal("two saves of the same image differ")
			}
			out := mustRun(t, "skopeo", "inspect", "--raw", "oci-archive:"+a+":"+c.compression)
			var m ocispec.Manifest
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("skopeo inspect --raw: %v\n%s", err, out)
			}
			// The base layer keeps its gzip blob; the built ones use the chosen compression.
			for _, l := range m.Layers[1:] {
				if l.MediaType != c.mediaType {
					t.Errorf("layer %s has media type %s, want %s", l.Digest, l.MediaType, c.mediaType)
				}
			}
			other := &env{t: t, root: t.TempDir()}
			if out := other.kiln("load", "-i", a); !strings.Contains(out, "Loaded image: rt:"+c.compression) {
				t.Errorf("load: %s", out)
			}
			if got := strings.TrimSpace(other.kiln("inspect", "--format", "{{.Id}}", "rt:"+c.compression)); got != id {
				t.Errorf("loaded ID %s, want %s", got, id)
			}
			// A build on the loaded image runs on its snapshots.
			ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM rt:" + c.compression + "\nRUN test -p /data/fifo && cat /data/hard > /copy && ! test -e /bin/vi\n"})
			other.kiln("build", "-q", "-t", "child", ctx2)

			dockerTar := filepath.Join(dir, "docker.tar")
			e.kiln("save", "--format", "docker", "-o", dockerTar, "rt:"+c.compression)
			third := &env{t: t, root: t.TempDir()}
			third.kiln("load", "-i", dockerTar)
			if got := strings.TrimSpace(third.kiln("inspect", "--format", "{{.Id}}", "rt:"+c.compression)); got != id {
				t.Errorf("docker-archive round trip: ID %s, want %s", got, id)
			}
			if err := exec.Command("skopeo", "inspect", "docker-archive:"+dockerTar).Run(); err != nil {
				t.Errorf("skopeo cannot read the docker-archive: %v", err)
			}
		})
	}
}
