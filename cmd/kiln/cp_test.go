package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	return names
}

// kiln cp follows docker cp's path rules both ways, on running and stopped
// containers, confined to the container's root; export writes the
// container's file system; commit makes an image of its writable layer.
func TestContainerCpExportCommit(t *testing.T) {
	e := newContainerEnv(t)
	host := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(host, "d", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(host, "d", "sub", "f"), []byte("in d\n"), 0o600))
	must(os.WriteFile(filepath.Join(host, "file"), []byte("top\n"), 0o644))
	must(os.Symlink("file", filepath.Join(host, "link")))
	must(os.Chown(filepath.Join(host, "file"), 1234, 1234))

	e.kiln("run", "-d", "--network", "none", "--name", "box", "bb", "sleep", "1000")
	// Host → running container.
	e.kiln("cp", filepath.Join(host, "d"), "box:/tmp/")                  // a directory into a directory
	e.kiln("cp", filepath.Join(host, "d")+"/.", "box:/tmp/contents")     // its contents as a new directory
	e.kiln("cp", filepath.Join(host, "file"), "box:/tmp/renamed")        // a file as a new name
	e.kiln("cp", "-a", filepath.Join(host, "file"), "box:/tmp/kept")     // -a keeps the owner
	e.kiln("cp", filepath.Join(host, "link"), "box:/tmp/")               // a symlink stays one
	e.kiln("cp", "-L", filepath.Join(host, "link"), "box:/tmp/followed") // -L copies its target
	got := e.kiln("exec", "box", "sh", "-c",
		"cd /tmp && find d contents | sort && cat renamed && stat -c '%u:%g' renamed kept && readlink link && cat followed")
	want := "contents\ncontents/sub\ncontents/sub/f\nd\nd/sub\nd/sub/f\ntop\n0:0\n1234:1234\nfile\ntop\n"
	if got != want {
		t.Errorf("copied into the container:\n%s\nwant:\n%s", got, want)
	}
	if r := e.run("", "cp", filepath.Join(host, "d"), "box:/tmp/renamed"); r.code == 0 || !strings.Contains(r.stderr, "cannot copy a directory to a file") {
		t.Errorf("directory onto a file: %+v", r)
	}
	if r := e.run("", "cp", filepath.Join(host, "file"), "box:/nowhere/x"); r.code == 0 {
		t.Errorf("into a missing directory: %+v", r)
	}

	// Symlinks in the container resolve inside it; a hostile tar on stdin
	// never writes outside.
	e.kiln("exec", "box", "ln", "-s", "/", "/tmp/up")
	escape := filepath.Join(host, "escaped")
	e.kiln("exec", "box", "mkdir", "-p", host) // the same path in the container
	e.kiln("cp", filepath.Join(host, "file"), "box:/tmp/up"+escape)
	if _, err := os.Stat(escape); err == nil {
		t.Fatal("cp through a container symlink wrote on the host")
	}
	if got := e.kiln("exec", "box", "cat", escape); got != "top\n" {
		t.Errorf("cp through a container symlink: %q", got)
	}
	evil := kilntest.Tar(t,
		kilntest.TarEntry{Name: "../../../../../../.." + escape, Body: "x"},
		kilntest.TarEntry{Name: "abs", Type: tar.TypeSymlink, Link: filepath.Dir(escape)},
		kilntest.TarEntry{Name: "abs/" + filepath.Base(escape), Body: "x"},
	)
	e.run(string(evil), "cp", "-", "box:/tmp")
	if _, err := os.Stat(escape); err == nil {
		t.Fatal("a tar on stdin wrote on the host")
	}
	if r := e.run(string(kilntest.Tar(t, kilntest.TarEntry{Name: "x"})), "cp", "-", "box:/tmp/renamed"); r.code == 0 {
		t.Errorf("a tar onto a file: %+v", r)
	}

	// Container → host, and tar on stdout.
	out := t.TempDir()
	e.kiln("cp", "box:/tmp/d", filepath.Join(out, "new"))
	e.kiln("cp", "box:/tmp/renamed", out)
	e.kiln("cp", "box:/tmp/up/etc/passwd", filepath.Join(out, "pw")) // resolved in the container
	for p, want := range map[string]string{"new/sub/f": "in d\n", "renamed": "top\n"} {
		if data, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(data) != want {
			t.Errorf("%s: %q %v", p, data, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(out, "pw")); !strings.HasPrefix(string(data), "root:x:0:0") {
		t.Errorf("container passwd: %q", data)
	}
	if names := tarNames(t, []byte(e.kiln("cp", "box:/tmp/d", "-"))); strings.Join(names, " ") != "d/ d/sub/ d/sub/f" {
		t.Errorf("cp to stdout: %q", names)
	}

	// Commit while running (paused meanwhile), with changes.
	id := strings.TrimSpace(e.kiln("commit", "-c", "ENV GREETING=hi", "-c", `CMD ["sh", "-c", "echo $GREETING; cat /tmp/renamed"]`,
		"-c", "WORKDIR /tmp", "-m", "snapshot", "box", "snap:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if got := e.kiln("run", "--rm", "--network", "none", "snap:1"); got != "hi\ntop\n" {
		t.Errorf("committed image runs %q", got)
	}
	if got := e.inspectF("{{.Config.WorkingDir}}", "snap:1"); got != "/tmp" {
		t.Errorf("committed WORKDIR %q", got)
	}
	if hist := e.kiln("history", "snap:1"); !strings.Contains(hist, "snapshot") {
		t.Errorf("history:\n%s", hist)
	}
	if r := e.run("", "commit", "-c", "RUN true", "box"); r.code == 0 || !strings.Contains(r.stderr, "not a valid change command") {
		t.Errorf("commit -c RUN: %+v", r)
	}

	// Stopped: cp both ways and export see the writable layer over the image.
	e.kiln("kill", "box")
	e.kiln("cp", filepath.Join(host, "file"), "box:/stopped")
	e.kiln("cp", "box:/stopped", filepath.Join(out, "back"))
	if data, _ := os.ReadFile(filepath.Join(out, "back")); string(data) != "top\n" {
		t.Errorf("round trip through a stopped container: %q", data)
	}
	names := tarNames(t, []byte(e.kiln("export", "box")))
	joined := " " + strings.Join(names, " ") + " "
	for _, n := range []string{" bin/busybox ", " stopped ", " tmp/d/sub/f ", " etc/passwd "} {
		if !strings.Contains(joined, n) {
			t.Errorf("export lacks %q", n)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(e.root, "containers", "*", ".mnt-*")); len(m) > 0 {
		t.Errorf("mount points left: %v", m)
	}
}
