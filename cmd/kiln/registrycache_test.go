package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/registry/registrytest"
)

// TestRegistryCache: cache pushed to a registry by one store makes a build in
// an empty store all hits, fetching only the layers of the steps it hits, and
// gives the same image.
func TestRegistryCache(t *testing.T) {
	a := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	base := reg.Ref("kiln/base:1")
	a.importBase(base)
	a.kiln("push", base)
	cacheRef := reg.Ref("kiln/app:cache")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY app /app\nRUN echo built > /app/out\nRUN echo unused-later > /tmp/x\n",
		"app/main":   "main\n",
	})
	id := strings.TrimSpace(a.kiln("build", "-q", "--cache-to", "type=registry,ref="+cacheRef+",mode=max", ctx))
	// A second export adds nothing new: no blob is uploaded again.
	mark := reg.Mark()
	a.kiln("build", "-q", "--cache-to", "type=registry,ref="+cacheRef, ctx)
	if n := reg.Requests(mark, "PUT", "/blobs/uploads/"); n > 1 { // at most the (unchanged) index config
		t.Errorf("second cache export uploaded %d blobs", n)
	}

	b := newEnv(t)
	mark = reg.Mark()
	r := b.run("", "build", "--explain-cache", "--cache-from", "type=registry,ref="+cacheRef, "-t", "app", ctx)
	if r.code != 0 {
		t.Fatalf("build from the registry cache: %s", r.stderr)
	}
	if strings.Contains(r.stderr, "cache miss") || strings.Count(r.stderr, "cache hit") != 3 {
		t.Errorf("want three hits:\n%s", r.stderr)
	}
	if got := strings.TrimSpace(b.kiln("inspect", "--format", "{{.Id}}", "app")); got != id {
		t.Errorf("image %s, the cache's machine made %s", got, id)
	}
	// Only the layers the steps needed were fetched: base (by FROM) and three steps.
	if n := reg.Requests(mark, "GET", "/blobs/sha256:"); n > 6 {
		t.Errorf("fetched %d blobs", n)
	}
	// A Dockerfile whose later step changed hits the first two only.
	c := newEnv(t)
	ctx2 := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY app /app\nRUN echo built > /app/out\nRUN echo changed > /tmp/x\n",
		"app/main":   "main\n",
	})
	r = c.run("", "build", "--explain-cache", "--cache-from", "type=registry,ref="+cacheRef, ctx2)
	if r.code != 0 || strings.Count(r.stderr, "cache hit") != 2 || strings.Count(r.stderr, "cache miss") != 1 {
		t.Errorf("partial hit:\n%s", r.stderr)
	}
}
