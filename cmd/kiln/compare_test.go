package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// The build cases of testdata/build: each folder holds a Dockerfile, its
// context, optional build-args (one KEY=VALUE a line) and expected/, which
// `docker build` (Debian's docker.io, BuildKit) produced from the same
// Dockerfile on the same base image: files.txt lists the image's files
// (timestamps aside) and config.json its config and history.
//
// To re-record expected/ with BuildKit v0.34.2 (../shared/oracle/buildkit.sh),
// as the cases issue 20 changed were:
//
//	KILN_RECORD_BUILDKIT=1 go test ./cmd/kiln -run TestBuildMatchesDocker
//
// (a case's deviations file then keeps the lines where kiln is meant to
// differ from BuildKit; see applyDeviations)
//
// or with a local dockerd: KILN_RECORD_DOCKER=1 go test ./cmd/kiln -run TestBuildMatchesDocker
func TestBuildMatchesDocker(t *testing.T) {
	kilntest.RequireRoot(t)
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it)", tool)
		}
	}
	cases, err := filepath.Glob("../../testdata/build/*/ctx/Dockerfile")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no build cases: %v", err)
	}
	record := os.Getenv("KILN_RECORD_DOCKER") == "1"
	recordBuildKit := os.Getenv("KILN_RECORD_BUILDKIT") == "1"
	for _, df := range cases {
		dir := filepath.Dir(filepath.Dir(df))
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			baseTar := e.importBase("localhost/bb:latest")
			work := t.TempDir()
			if record {
				dfiles, dconfig := dockerBuild(t, name, dir, baseTar, work)
				os.MkdirAll(filepath.Join(dir, "expected"), 0o755)
				writeFile(t, filepath.Join(dir, "expected", "files.txt"), dfiles)
				writeFile(t, filepath.Join(dir, "expected", "config.json"), dconfig)
			}
			if recordBuildKit {
				out := oracleBuild(t, e, dir, filepath.Join(dir, "ctx"), work)
				bfiles, bconfig := unpackImage(t, "oci-archive:"+out, work)
				bfiles = applyDeviations(t, filepath.Join(dir, "deviations"), bfiles)
				os.MkdirAll(filepath.Join(dir, "expected"), 0o755)
				writeFile(t, filepath.Join(dir, "expected", "files.txt"), bfiles)
				writeFile(t, filepath.Join(dir, "expected", "config.json"), bconfig)
			}
			args := []string{"build", "-q", "-t", "case-" + name}
			for _, a := range readLines(t, filepath.Join(dir, "build-args")) {
				args = append(args, "--build-arg", a)
			}
			id := strings.TrimSpace(e.kiln(append(args, filepath.Join(dir, "ctx"))...))
			if !strings.HasPrefix(id, "sha256:") {
				t.Fatalf("build -q printed %q, want an image ID", id)
			}
			archive := filepath.Join(work, "image.tar")
			e.kiln("save", "-o", archive, "case-"+name)
			files, config := unpackImage(t, "oci-archive:"+archive+":latest", work)
			compareText(t, "files", readFile(t, filepath.Join(dir, "expected", "files.txt")), files)
			compareText(t, "config", readFile(t, filepath.Join(dir, "expected", "config.json")), config)
		})
	}
}

// unpackImage copies the image at src (a skopeo transport reference) into an
// OCI layout with skopeo and unpacks it with umoci, tools no one here wrote,
// and returns the listing of its files and its normalized config.
func unpackImage(t *testing.T, src, work string) (files, config string) {
	t.Helper()
	layout := filepath.Join(work, "layout")
	bundle := filepath.Join(work, "bundle")
	os.RemoveAll(layout)
	os.RemoveAll(bundle)
	mustRun(t, "skopeo", "copy", "--quiet", src, "oci:"+layout+":img")
	mustRun(t, "umoci", "unpack", "--image", layout+":img", bundle)
	defer os.RemoveAll(bundle)
	files = listTree(t, filepath.Join(bundle, "rootfs"))

	var idx ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	var m ocispec.Manifest
	readJSON(t, filepath.Join(layout, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &m)
	var raw map[string]json.RawMessage
	readJSON(t, filepath.Join(layout, "blobs", "sha256", m.Config.Digest.Encoded()), &raw)
	return files, normalizeConfig(t, raw)
}

// normalizeConfig keeps what a Dockerfile decides: the runtime config and the
// history of the steps after the base image (timestamps aside).
func normalizeConfig(t *testing.T, raw map[string]json.RawMessage) string {
	t.Helper()
	var cfg map[string]any
	json.Unmarshal(raw["config"], &cfg)
	keep := map[string]any{}
	for _, k := range []string{"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal", "Shell", "OnBuild", "Healthcheck"} {
		if v, ok := cfg[k]; ok && v != nil && v != "" {
			keep[k] = v
		}
	}
	var history []ocispec.History
	json.Unmarshal(raw["history"], &history)
	var steps []string
	for _, h := range history[1:] { // the first entry is the base image's import
		steps = append(steps, fmt.Sprintf("%s (empty_layer=%v)", h.CreatedBy, h.EmptyLayer))
	}
	keep["History"] = steps
	var author string
	json.Unmarshal(raw["author"], &author)
	if author != "" {
		keep["Author"] = author
	}
	data, err := json.MarshalIndent(keep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data) + "\n"
}

// listTree lists every file under root, one line each: path, type and mode,
// owner, size and content digest or link target. Timestamps are left out.
func listTree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		mode := info.Mode()
		perm := uint32(mode.Perm())
		if mode&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if mode&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		if mode&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		var kind, extra string
		switch {
		case mode.IsDir():
			kind = "d"
		case mode&fs.ModeSymlink != 0:
			kind = "l"
			target, _ := os.Readlink(p)
			extra = "-> " + target
		case mode&fs.ModeNamedPipe != 0:
			kind = "p"
		case mode&fs.ModeCharDevice != 0:
			kind, extra = "c", fmt.Sprintf("%d,%d", st.Rdev>>8, st.Rdev&0xff)
		case mode&fs.ModeDevice != 0:
			kind, extra = "b", fmt.Sprintf("%d,%d", st.Rdev>>8, st.Rdev&0xff)
		case mode.IsRegular():
			kind = "f"
			extra = fmt.Sprintf("%d %s", info.Size(), fileDigest(t, p))
			if st.Nlink > 1 {
				extra += fmt.Sprintf(" links=%d", st.Nlink)
			}
		default:
			kind = "?"
		}
		lines = append(lines, fmt.Sprintf("/%s %s%04o %d:%d %s", rel, kind, perm, st.Uid, st.Gid, extra))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func fileDigest(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// dockerBuild builds the case with docker (BuildKit) on the same base image
// and returns what unpackImage makes of the result.
func dockerBuild(t *testing.T, name, dir, baseTar, work string) (string, string) {
	t.Helper()
	docker := "/usr/bin/docker"
	mustRun(t, docker, "import", baseTar, "localhost/bb:latest")
	args := []string{"build", "-q", "-t", "kiln-case-" + name}
	for _, a := range readLines(t, filepath.Join(dir, "build-args")) {
		args = append(args, "--build-arg", a)
	}
	cmd := exec.Command(docker, append(args, filepath.Join(dir, "ctx"))...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	archive := filepath.Join(work, "docker.tar")
	mustRun(t, docker, "save", "-o", archive, "kiln-case-"+name)
	mustRun(t, docker, "rmi", "kiln-case-"+name)
	files, _ := unpackImage(t, "docker-archive:"+archive, work)
	// skopeo's conversion to OCI drops docker's config extensions
	// (Healthcheck, OnBuild, Shell): take the config as docker wrote it.
	return files, normalizeConfig(t, dockerArchiveConfig(t, archive))
}

// dockerArchiveConfig reads the image config out of a docker-archive tar.
func dockerArchiveConfig(t *testing.T, archive string) map[string]json.RawMessage {
	t.Helper()
	members := readTar(t, archive)
	var manifest []struct{ Config string }
	if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil || len(manifest) == 0 {
		t.Fatalf("docker archive manifest: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(members[manifest[0].Config], &raw); err != nil {
		t.Fatalf("docker archive config: %v", err)
	}
	return raw
}

func compareText(t *testing.T, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	ws, gs := map[string]bool{}, map[string]bool{}
	for _, l := range wl {
		ws[l] = true
	}
	for _, l := range gl {
		gs[l] = true
	}
	var diff []string
	for _, l := range wl {
		if !gs[l] {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range gl {
		if !ws[l] {
			diff = append(diff, "+ "+l)
		}
	}
	t.Errorf("%s differ from the expected (- expected, + kiln):\n%s\nkiln's whole %s:\n%s", what, strings.Join(diff, "\n"), what, got)
}

// readTar reads every member of a tar file into memory (test archives are small).
func readTar(t *testing.T, archive string) map[string][]byte {
	t.Helper()
	members := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		members[hdr.Name] = data
	}
	return members
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readLines(t *testing.T, p string) []string {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (record with KILN_RECORD_DOCKER=1)", err)
	}
	return string(data)
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}
