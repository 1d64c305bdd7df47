package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/registry/registrytest"
)

// TestPushPullBuildFrom: a kiln-built image is pushed, removed, pulled back
// (explicitly, and by FROM in an empty store) and built upon.
func TestPushPullBuildFrom(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	e.importBase("localhost/bb:latest")
	ref := reg.Ref("kiln/app:v1")
	e.kiln("build", "-t", ref, writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb\nRUN echo built > /hello\nCOPY f /f\n",
		"f":          "from the context\n",
	}))
	id := strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", ref))
	r := e.run("", "push", ref)
	if r.code != 0 {
		t.Fatalf("push: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "v1: digest: sha256:") || !strings.Contains(r.stderr, ": pushed") {
		t.Errorf("push output:\n%s\n%s", r.stdout, r.stderr)
	}
	// Pushed again: nothing to upload.
	mark := reg.Mark()
	r = e.run("", "push", ref)
	if r.code != 0 || reg.Requests(mark, "PUT", "/blobs/") != 0 || strings.Contains(r.stderr, ": pushed") {
		t.Errorf("second push uploaded something (exit %d):\n%s", r.code, r.stderr)
	}

	e.kiln("rmi", ref)
	if r := e.run("", "inspect", ref); r.code == 0 {
		t.Fatalf("%s still there after rmi", ref)
	}
	r = e.run("", "pull", ref)
	if r.code != 0 || strings.TrimSpace(r.stdout) != ref || !strings.Contains(r.stderr, "Digest: sha256:") {
		t.Fatalf("pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", ref)); got != id {
		t.Errorf("pulled image %s, pushed %s", got, id)
	}

	// An empty store: FROM pulls what it lacks, and the build runs on it.
	fresh := newEnv(t)
	ctxDir := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN cat /hello /f > /both\n"})
	if r := fresh.run("", "build", "--pull=never", "-t", "localhost/next", ctxDir); r.code == 0 || !strings.Contains(r.stderr, "not found in the store") {
		t.Errorf("--pull=never in an empty store: exit %d\n%s", r.code, r.stderr)
	}
	r = fresh.run("", "build", "-t", "localhost/next", ctxDir)
	if r.code != 0 || !strings.Contains(r.stderr, "pulling "+ref) {
		t.Fatalf("build FROM a registry image: exit %d\n%s", r.code, r.stderr)
	}
	if got := strings.TrimSpace(fresh.kiln("inspect", "--format", "{{.Id}}", ref)); got != id {
		t.Errorf("FROM pulled %s, want %s", got, id)
	}
	// The built image holds what RUN made of the pulled layers.
	out := filepath.Join(t.TempDir(), "next.tar")
	fresh.kiln("save", "-o", out, "localhost/next")
	layout := t.TempDir()
	mustRun(t, "tar", "-C", layout, "-xf", out)
	data := mustRun(t, "sh", "-c", "for f in "+layout+"/blobs/sha256/*; do tar -xOzf $f both 2>/dev/null; done; true")
	if data != "built\nfrom the context\n" {
		t.Errorf("/both = %q", data)
	}
	// --pull always fetches again, here the same image.
	mark = reg.Mark()
	if r := fresh.run("", "build", "--pull", "-t", "localhost/next", ctxDir); r.code != 0 {
		t.Fatalf("build --pull: exit %d\n%s", r.code, r.stderr)
	}
	if reg.Requests(mark, "GET", "/manifests/v1") != 1 {
		t.Errorf("--pull always did not ask the registry once:\n%s", reg.AccessLog()[mark:])
	}
}

// TestLoginLogout: wrong credentials fail clearly, right ones are stored and
// let push through, logout removes them.
func TestLoginLogout(t *testing.T) {
	e := newEnv(t)
	cfg := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfg)
	reg := registrytest.Start(t, registrytest.Options{Auth: true})
	e.importBase("localhost/bb:latest")
	ref := reg.Ref("private/bb:1")

	if r := e.run("", "push", "localhost/bb", ref); r.code == 0 || !strings.Contains(r.stderr, "unauthorized") {
		t.Errorf("push without login: exit %d\n%s", r.code, r.stderr)
	}
	r := e.run("wrong\n", "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r.code == 0 || !strings.Contains(r.stderr, "refused the username or password") {
		t.Errorf("login with a wrong password: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(cfg, "config.json")); err == nil {
		t.Errorf("a failed login wrote config.json")
	}
	r = e.run(reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	e.kiln("push", "localhost/bb", ref)
	if out := e.kiln("logout", reg.Host); !strings.Contains(out, "Removing login credentials for "+reg.Host) {
		t.Errorf("logout: %s", out)
	}
	if r := e.run("", "pull", ref); r.code == 0 {
		t.Errorf("pull after logout worked")
	}
}

// TestRunPullsWhatItLacks: kiln run in an empty store pulls the image, as
// docker run does; --pull=never refuses.
func TestRunPullsWhatItLacks(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	ref := reg.Ref("kiln/busybox:1")
	e.importBase(ref)
	e.kiln("push", ref)

	fresh := newEnv(t)
	if r := fresh.run("", "run", "--rm", "--network", "none", "--pull", "never", ref, "true"); r.code == 0 || !strings.Contains(r.stderr, "unable to find image") {
		t.Errorf("--pull never: %d %q", r.code, r.stderr)
	}
	r := fresh.run("", "run", "--rm", "--network", "none", ref, "echo", "pulled and ran")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "pulled and ran" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Fatalf("run of a missing image: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Now it is in the store: no second pull.
	mark := reg.Mark()
	fresh.kiln("run", "--rm", "--network", "none", ref, "true")
	if n := reg.Requests(mark, "GET", "/manifests/"); n != 0 {
		t.Errorf("the second run asked the registry %d times", n)
	}
}
