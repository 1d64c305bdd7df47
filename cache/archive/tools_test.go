package archive

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// TestSaveOCIReadBySkopeoAndUmoci checks the OCI archive with the tools people
// will use on it.
func TestSaveOCIReadBySkopeoAndUmoci(t *testing.T) {
	needTool(t, "skopeo")
	needTool(t, "umoci")
	s := openStore(t)
	id := buildImage(t, s, "bb", layer.Gzip)
	md, m, err := s.Manifest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	p := saveFile(t, s, FormatOCI, "bb")

	var info struct {
		Digest digest.Digest
		Layers []digest.Digest
		Env    []string
	}
	if err := json.Unmarshal([]byte(run(t, "skopeo", "inspect", "oci-archive:"+p+":latest")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Digest != md.Digest || len(info.Layers) != 2 || info.Layers[0] != m.Layers[0].Digest || info.Layers[1] != m.Layers[1].Digest {
		t.Errorf("skopeo inspect: %+v, want manifest %s layers %v", info, md.Digest, m.Layers)
	}
	if !slices.Contains(info.Env, "NAME=bb") {
		t.Errorf("skopeo inspect: env %v", info.Env)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	if err := os.Mkdir(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-xf", p, "-C", layout)
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", layout+":latest", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"bin", os.ModeDir | 0o755},
		{"bin/run", 0o755},
		{"etc", os.ModeDir | 0o750},
		{"etc/hello", 0o644},
		{"data/blob", 0o600},
		{"link", os.ModeSymlink | 0o777},
	} {
		fi, err := os.Lstat(filepath.Join(rootfs, c.path))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(rootfs, "link")); string(got) != "hello\n" {
		t.Errorf("link reads %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(rootfs, "data/blob")); string(got) != string(blobData()) {
		t.Errorf("data/blob differs (%d bytes)", len(got))
	}
}

// TestLoadSkopeoArchives loads what skopeo writes from a kiln archive.
func TestLoadSkopeoArchives(t *testing.T) {
	needTool(t, "skopeo")
	s := openStore(t)
	id := buildImage(t, s, "bb", layer.Gzip)
	p := saveFile(t, s, FormatOCI, "bb")
	dir := t.TempDir()
	for _, c := range []struct {
		dest, file string
		names      []string
	}{
		{"docker-archive:%s:example.com/copied:v1", "docker.tar", []string{"example.com/copied:v1"}},
		{"oci-archive:%s:latest", "oci.tar", nil}, // a bare tag names no repository
		{"oci-archive:%s:example.com/copied:v2", "oci-named.tar", []string{"example.com/copied:v2"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			out := filepath.Join(dir, c.file)
			run(t, "skopeo", "--insecure-policy", "copy", "-q", "oci-archive:"+p+":latest", strings.Replace(c.dest, "%s", out, 1))
			s2 := openStore(t)
			loaded, err := loadFile(t, s2, out)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].ID != id || !slices.Equal(loaded[0].Names, c.names) {
				t.Fatalf("loaded %+v, want %s %v", loaded, id, c.names)
			}
			img, _, err := s2.Image(id)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(s2.SnapshotDir(img.RootFS.DiffIDs[0]), "bin/run")); err != nil || !strings.Contains(string(got), "echo run") {
				t.Errorf("bin/run: %q, %v", got, err)
			}
		})
	}
}

// TestSaveDockerLoadedByDocker hands the docker archive to a real docker load.
func TestSaveDockerLoadedByDocker(t *testing.T) {
	const docker = "/usr/bin/docker"
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("%s info failed, no docker daemon to load into: %v: %.200s", docker, err, out)
	}
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			s := openStore(t)
			name := randomName() + ":" + string(c)
			id := buildImage(t, s, name, c)
			p := saveFile(t, s, FormatDocker, name)
			t.Cleanup(func() { exec.Command(docker, "rmi", "--force", name).Run() })
			out := run(t, docker, "load", "-i", p)
			if !strings.Contains(out, "Loaded image: "+name) {
				t.Errorf("docker load said %q", out)
			}
			got := strings.TrimSpace(run(t, docker, "image", "inspect", "--format", "{{.Id}}", name))
			if got != id.String() {
				t.Errorf("docker has the image as %s, want %s", got, id)
			}
			// And what docker save writes of it loads back as the same image.
			back := filepath.Join(t.TempDir(), "docker-save.tar")
			run(t, docker, "save", "-o", back, name)
			run(t, docker, "rmi", name)
			s2 := openStore(t)
			loaded, err := loadFile(t, s2, back)
			if err != nil {
				t.Fatal(err)
			}
			norm, _ := cache.NormalizeName(name)
			if len(loaded) != 1 || loaded[0].ID != id || !slices.Equal(loaded[0].Names, []string{norm}) {
				t.Fatalf("loaded docker save output as %+v, want %s %s", loaded, id, norm)
			}
		})
	}
}
