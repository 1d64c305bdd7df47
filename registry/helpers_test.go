package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
)

// anon are options that never read the machine's docker config.
var anon = Options{Keychain: authn.NewMultiKeychain()}

// makeTar makes a layer tar of regular files (name → content).
func makeTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var entries []kilntest.TarEntry
	for _, n := range sortedKeys(files) {
		entries = append(entries, kilntest.TarEntry{Name: n, Mode: 0o644, Body: files[n], Mtime: 1700000000})
	}
	return kilntest.Tar(t, entries...)
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// makeImage stores an image with one layer per file set, names it, and
// returns its ID.
func makeImage(t *testing.T, s *cache.Store, name string, layers ...map[string]string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	img := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	img.RootFS.Type = "layers"
	img.Config.Env = []string{"NAME=" + name}
	for _, files := range layers {
		l, err := s.ImportTar(ctx, bytes.NewReader(makeTar(t, files)))
		if err != nil {
			t.Fatal(err)
		}
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
		img.History = append(img.History, ocispec.History{CreatedBy: "test layer"})
	}
	data, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.PutImage(ctx, data, cache.ImageOptions{OwnLayers: len(layers), Compression: "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(name, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// readSnapshot reads a file of a layer's snapshot.
func readSnapshot(t *testing.T, s *cache.Store, diffID digest.Digest, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.SnapshotDir(diffID), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}
