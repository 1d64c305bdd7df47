package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// buildioDockerfile is the build the output tests share: a RUN that records
// the step's /etc/hosts (for --add-host), a COPY and a LABEL that --label
// overrides.
const buildioDockerfile = "FROM localhost/bb\nRUN echo hi > /hi && cp /etc/hosts /hosts-seen\nCOPY f /f\nLABEL a=dockerfile keep=yes\n"

// TestBuildOutputs: every -o type, read back by tools kiln did not write
// (tar, skopeo, docker load when a dockerd answers), with --iidfile,
// --metadata-file, --label, --annotation and --add-host on the same build.
func TestBuildOutputs(t *testing.T) {
	e := newEnv(t)
	kilntest.NeedTool(t, "skopeo")
	e.importBase("localhost/bb:latest")
	ctxDir := writeContext(t, map[string]string{"Dockerfile": buildioDockerfile, "f": "file\n"})
	out := t.TempDir()
	common := []string{"build", "--label", "a=flag", "--label", "org.example.k=v", "--add-host", "db.internal:10.1.2.3", "--add-host", "v6:::1"}

	// The default output: into the store, every -t, with iidfile and metadata.
	iid, meta := filepath.Join(out, "iid"), filepath.Join(out, "meta.json")
	e.kiln(append(common, "-t", "app:v1", "-t", "app:v2", "--annotation", "org.example.m=manifest", "--iidfile", iid, "--metadata-file", meta, ctxDir)...)
	id := strings.TrimSpace(e.kiln("inspect", "--format", "{{.Id}}", "app:v2"))
	if got, _ := os.ReadFile(iid); string(got) != id {
		t.Errorf("--iidfile holds %q, want %q", got, id)
	}
	var md map[string]any
	data, _ := os.ReadFile(meta)
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("metadata file: %v\n%s", err, data)
	}
	if md["containerimage.config.digest"] != id || md["image.name"] != "docker.io/library/app:v1,docker.io/library/app:v2" {
		t.Errorf("metadata: %s", data)
	}
	digest, _ := md["containerimage.digest"].(string)
	desc, _ := md["containerimage.descriptor"].(map[string]any)
	if !strings.HasPrefix(digest, "sha256:") || desc["digest"] != digest || desc["mediaType"] != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("metadata digest/descriptor: %s", data)
	}
	if labels := e.kiln("inspect", "--format", "{{json .Config.Labels}}", "app:v1"); strings.TrimSpace(labels) != `{"a":"flag","keep":"yes","org.example.k":"v"}` {
		t.Errorf("labels = %s", labels)
	}
	// The manifest the store hands out (save) is the annotated one, with the digest of the metadata.
	saved := filepath.Join(out, "saved.tar")
	e.kiln("save", "-o", saved, "app:v1")
	raw := mustRun(t, "skopeo", "inspect", "--raw", "oci-archive:"+saved+":v1")
	if !strings.Contains(raw, `"annotations":{"org.example.m":"manifest"}`) {
		t.Errorf("saved manifest lacks the annotation: %s", raw)
	}

	// type=local: the final stage's files, the RUN step's /etc/hosts with the extra hosts.
	local := filepath.Join(out, "local")
	e.kiln(append(common, "-o", "type=local,dest="+local, ctxDir)...)
	if b, err := os.ReadFile(filepath.Join(local, "hi")); err != nil || string(b) != "hi\n" {
		t.Errorf("local output /hi: %q %v", b, err)
	}
	hosts, _ := os.ReadFile(filepath.Join(local, "hosts-seen"))
	if !strings.Contains(string(hosts), "10.1.2.3\tdb.internal\n") || !strings.Contains(string(hosts), "::1\tv6\n") {
		t.Errorf("RUN's /etc/hosts:\n%s", hosts)
	}
	if fi, err := os.Lstat(filepath.Join(local, "bin", "sh")); err != nil || fi.Mode()&os.ModeSymlink == 0 && !fi.Mode().IsRegular() {
		t.Errorf("local output lacks the base's /bin/sh: %v", err)
	}

	// type=tar to a file and to stdout; -o DIR and -o - are buildx's shorthands.
	fsTar := filepath.Join(out, "fs.tar")
	e.kiln(append(common, "-o", "type=tar,dest="+fsTar, ctxDir)...)
	if list := mustRun(t, "tar", "-tf", fsTar); !strings.Contains(list, "\nhi\n") || !strings.Contains(list, "bin/busybox") {
		t.Errorf("tar output lists:\n%s", list)
	}
	r := e.run("", append(common, "-q", "-o", "-", ctxDir)...)
	if r.code != 0 {
		t.Fatalf("-o -: exit %d\n%s", r.code, r.stderr)
	}
	cmd := exec.Command("tar", "-xOf", "-", "f")
	cmd.Stdin = strings.NewReader(r.stdout)
	if b, err := cmd.Output(); err != nil || string(b) != "file\n" {
		t.Errorf("-o - tar: f = %q, %v", b, err)
	}

	// type=oci (tar and directory) and type=docker, with the annotations an index.json carries.
	ociTar, ociDir, dockerTar := filepath.Join(out, "oci.tar"), filepath.Join(out, "oci"), filepath.Join(out, "docker.tar")
	ann := []string{"--annotation", "org.example.m=manifest", "--annotation", "manifest-descriptor:org.example.d=desc", "--annotation", "index-descriptor:org.example.i=index"}
	e.kiln(append(append(common, ann...), "-t", "app:oci", "-o", "type=oci,dest="+ociTar, ctxDir)...)
	e.kiln(append(common, "-t", "app:oci", "-o", "type=oci,dest="+ociDir+",tar=false", ctxDir)...)
	dockerIID := filepath.Join(out, "docker.iid")
	e.kiln(append(common, "-t", "app:docker", "-t", "other:1", "--iidfile", dockerIID, "-o", "type=docker,dest="+dockerTar, ctxDir)...)
	if r := e.run("", "inspect", "app:oci"); r.code == 0 {
		t.Errorf("type=oci tagged app:oci in the store")
	}
	raw = mustRun(t, "skopeo", "inspect", "--raw", "oci-archive:"+ociTar+":oci")
	if !strings.Contains(raw, `"annotations":{"org.example.m":"manifest"}`) {
		t.Errorf("oci output manifest: %s", raw)
	}
	index := mustRun(t, "tar", "-xOf", ociTar, "index.json")
	if !strings.Contains(index, `"org.example.d":"desc"`) || !strings.Contains(index, `"annotations":{"org.example.i":"index"}`) {
		t.Errorf("oci output index.json: %s", index)
	}
	// The directory layout has no annotations: this build asked for none.
	raw = mustRun(t, "skopeo", "inspect", "--raw", "oci:"+ociDir+":oci")
	if strings.Contains(raw, "annotations") {
		t.Errorf("tar=false layout carries a previous build's annotations: %s", raw)
	}
	cfg := mustRun(t, "skopeo", "inspect", "--config", "oci:"+ociDir+":oci")
	if !strings.Contains(cfg, `"org.example.k": "v"`) {
		t.Errorf("oci layout config lacks the label:\n%s", cfg)
	}
	cfg = mustRun(t, "skopeo", "inspect", "--config", "docker-archive:"+dockerTar+":docker.io/library/other:1")
	if !strings.Contains(cfg, `"a": "flag"`) {
		t.Errorf("docker-archive config:\n%s", cfg)
	}
	if _, err := exec.LookPath("podman"); err == nil {
		// podman's own store, in a temp dir, with the vfs driver: no mounts to leave behind.
		p := t.TempDir()
		pod := []string{"--root", filepath.Join(p, "root"), "--runroot", filepath.Join(p, "run"), "--storage-driver", "vfs"}
		loaded := mustRun(t, "podman", append(pod, "load", "-i", dockerTar)...)
		if !strings.Contains(loaded, "app:docker") || !strings.Contains(loaded, "other:1") {
			t.Errorf("podman load:\n%s", loaded)
		}
		podID := mustRun(t, "podman", append(pod, "image", "inspect", "--format", "{{.Id}}", "other:1")...)
		if want, _ := os.ReadFile(dockerIID); "sha256:"+strings.TrimSpace(podID) != string(want) {
			t.Errorf("podman loaded image %s, kiln built %s", podID, want)
		}
	} else {
		t.Log("no podman: the docker-archive was not loaded by podman")
	}
	if exec.Command("docker", "info").Run() == nil {
		mustRun(t, "docker", "load", "-i", dockerTar)
		mustRun(t, "docker", "rmi", "app:docker", "other:1")
	} else {
		t.Log("no dockerd answers: docker load not tried (skopeo and podman read the docker-archive)")
	}

	// What an output cannot carry is refused before anything is built.
	for _, bad := range [][]string{
		{"-o", "type=local,dest=" + local, "--annotation", "x=y"},
		{"--annotation", "index:x=y", "-t", "app:v1"},
		{"--annotation", "manifest-descriptor:x=y", "-t", "app:v1"},
		{"-o", "type=bogus"},
		{"-o", "type=oci"},
		{"-o", "type=local,dest=" + local, "-t", "app:v1"},
		{"-o", "type=local,dest=" + local, "--push"},
		{"-o", "type=tar,dest=" + fsTar, "--iidfile", iid},
		{"--push"},
		{"--add-host", "nocolon"},
		{"-o", "type=registry,name=x,oci-mediatypes=false,compression=zstd"},
	} {
		r := e.run("", append(append([]string{"build"}, bad...), ctxDir)...)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || strings.Contains(r.stderr, "[1/") {
			t.Errorf("kiln build %v: exit %d, want one error line before any step:\n%s", bad, r.code, r.stderr)
		}
	}
}

// TestBuildPush: --push sends every -t to a real registry (Debian's
// docker-registry), the metadata file names what the registry serves, and
// type=image,push=true and type=registry take the compression and
// oci-mediatypes options.
func TestBuildPush(t *testing.T) {
	e := newEnv(t)
	kilntest.NeedTool(t, "skopeo")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	e.importBase("localhost/bb:latest")
	ctxDir := writeContext(t, map[string]string{"Dockerfile": buildioDockerfile, "f": "file\n"})
	meta := filepath.Join(t.TempDir(), "meta.json")
	one, two := reg.Ref("kiln/app:one"), reg.Ref("kiln/other:two")
	e.kiln("build", "--push", "-t", one, "-t", two, "--annotation", "org.example.m=pushed", "--metadata-file", meta, ctxDir)
	var md map[string]any
	data, _ := os.ReadFile(meta)
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("metadata: %v\n%s", err, data)
	}
	for _, ref := range []string{one, two} {
		d := strings.TrimSpace(mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref))
		if md["containerimage.digest"] != d {
			t.Errorf("%s: registry serves %s, metadata says %v", ref, d, md["containerimage.digest"])
		}
	}
	raw := mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+one)
	if !strings.Contains(raw, `"org.example.m":"pushed"`) || !strings.Contains(raw, "application/vnd.oci.image.manifest.v1+json") {
		t.Errorf("pushed manifest: %s", raw)
	}
	// The pushed image is in the store too, under its names (type=image stores).
	if r := e.run("", "inspect", one); r.code != 0 {
		t.Errorf("--push left no %s in the store", one)
	}

	zstd := reg.Ref("kiln/app:zstd")
	e.kiln("build", "-o", "type=registry,name="+zstd+",compression=zstd", ctxDir)
	raw = mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+zstd)
	if !strings.Contains(raw, "application/vnd.oci.image.layer.v1.tar+zstd") {
		t.Errorf("compression=zstd pushed: %s", raw)
	}
	docker := reg.Ref("kiln/app:docker")
	e.kiln("build", "-t", docker, "-o", "type=image,push=true,oci-mediatypes=false", ctxDir)
	raw = mustRun(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+docker)
	if !strings.Contains(raw, "application/vnd.docker.distribution.manifest.v2+json") || !strings.Contains(raw, "application/vnd.docker.image.rootfs.diff.tar.gzip") {
		t.Errorf("oci-mediatypes=false pushed: %s", raw)
	}
	// What skopeo reads back is the image built: its layer holds /f.
	dir := t.TempDir()
	mustRun(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+docker, "dir:"+dir)
	if got := mustRun(t, "sh", "-c", "for f in "+dir+"/*; do tar -xOzf $f f 2>/dev/null; done; true"); got != "file\n" {
		t.Errorf("pushed layers hold f = %q", got)
	}
}
