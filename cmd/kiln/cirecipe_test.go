package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// TestREADMECIRecipe runs the README's CI recipe as written (a shell with
// kiln on its PATH, against a real registry in place of
// registry.example.com) and checks what it promises: both tags pushed, the
// label set, and digest.txt holding the digest the registry serves.
func TestREADMECIRecipe(t *testing.T) {
	e := newEnv(t)
	kilntest.NeedTool(t, "jq")
	kilntest.NeedTool(t, "skopeo")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- ci-recipe")
	if !ok {
		t.Fatal("README has no <!-- ci-recipe --> block")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	recipe, _, ok := strings.Cut(rest, "```")
	if !ok || !strings.Contains(recipe, "kiln build") {
		t.Fatalf("README's CI recipe block does not parse:\n%s", rest)
	}
	reg := registrytest.Start(t, registrytest.Options{})
	recipe = strings.ReplaceAll(recipe, "registry.example.com", reg.Host)
	e.importBase("localhost/bb:latest")
	work := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb\nCOPY app /app\n", "app": "the app\n"})

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nKILN_TEST_MAIN=1 exec " + self + " --root " + e.root + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "kiln"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-ex", "-c", recipe)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "CI_COMMIT_SHA=0123abcd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's CI recipe failed: %v\n%s\n%s", err, recipe, out)
	}
	digest, _ := os.ReadFile(filepath.Join(work, "digest.txt"))
	for _, tag := range []string{"0123abcd", "latest"} {
		ref := "docker://" + reg.Ref("team/app:"+tag)
		served := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", ref)
		if strings.TrimSpace(served) != strings.TrimSpace(string(digest)) || !strings.HasPrefix(string(digest), "sha256:") {
			t.Errorf("%s: registry serves %s, digest.txt holds %q", ref, served, digest)
		}
	}
	cfg := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+reg.Ref("team/app:latest"))
	if !strings.Contains(cfg, `"org.opencontainers.image.revision": "0123abcd"`) {
		t.Errorf("pushed config lacks the revision label:\n%s", cfg)
	}
}
