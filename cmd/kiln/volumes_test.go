package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Volumes are filled from the image the first time, as docker's: an empty
// named volume takes what the image has at its mount point, an image's
// VOLUME gets an anonymous volume with its content; a volume that has
// something, or nocopy, is left alone; symlinks are copied, never followed.
func TestContainerVolumesFromImage(t *testing.T) {
	e := newContainerEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM bb
RUN mkdir -p /data/sub /etc/app && echo img > /data/f && echo deep > /data/sub/g && ln -s /etc/passwd /data/lnk && ln /data/f /data/hard && chown -R 1000:1000 /data && chmod 750 /data && echo conf > /etc/app/conf
VOLUME /data
`})
	e.kiln("build", "-q", "-t", "vol", ctx)

	// The image's VOLUME: an anonymous volume, filled.
	out := e.kiln("run", "--name", "anon", "vol", "sh", "-c", "cat /data/f /data/sub/g; stat -c '%u %a' /data; readlink /data/lnk; stat -c %h /data/f")
	if out != "img\ndeep\n1000 750\n/etc/passwd\n2\n" {
		t.Errorf("anonymous volume: %q", out)
	}
	name := e.inspectF("{{range .Mounts}}{{.Type}} {{.Destination}} {{.Name}}{{end}}", "anon")
	f := strings.Fields(name)
	if len(f) != 3 || f[0] != "volume" || f[1] != "/data" || len(f[2]) != 64 {
		t.Fatalf("Mounts: %q", name)
	}
	data := filepath.Join(e.root, "volumes", f[2], "_data")
	if fi, err := os.Lstat(filepath.Join(data, "lnk")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink in the volume: %v, %v", fi, err)
	}
	// An empty named volume takes the image's content at its mount point...
	if out := e.kiln("run", "--rm", "-v", "conf:/etc/app", "vol", "cat", "/etc/app/conf"); out != "conf\n" {
		t.Errorf("named volume: %q", out)
	}
	if got, _ := os.ReadFile(filepath.Join(e.root, "volumes", "conf", "_data", "conf")); string(got) != "conf\n" {
		t.Errorf("the named volume on the host has %q", got)
	}
	// ...but once it has something it is left as it is.
	e.kiln("run", "--rm", "-v", "conf:/etc/app", "vol", "sh", "-c", "echo mine > /etc/app/conf")
	if out := e.kiln("run", "--rm", "-v", "conf:/data", "vol", "ls", "/data"); out != "conf\n" {
		t.Errorf("a volume with content was filled again: %q", out)
	}
	// nocopy (-v and --mount).
	if out := e.kiln("run", "--rm", "-v", "empty1:/data:nocopy", "vol", "ls", "-A", "/data"); out != "" {
		t.Errorf("-v nocopy: %q", out)
	}
	if out := e.kiln("run", "--rm", "--mount", "type=volume,source=empty2,target=/data,volume-nocopy", "vol", "ls", "-A", "/data"); out != "" {
		t.Errorf("--mount volume-nocopy: %q", out)
	}
	// A bind mount is never filled.
	host := t.TempDir()
	if out := e.kiln("run", "--rm", "-v", host+":/data", "vol", "ls", "-A", "/data"); out != "" {
		t.Errorf("bind mount filled: %q", out)
	}
	e.kiln("rm", "-v", "anon")
	if _, err := os.Stat(data); err == nil {
		t.Errorf("rm -v left the anonymous volume")
	}
}
