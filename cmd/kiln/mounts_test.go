package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kiln-build/kiln/layer"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs kiln in the background; its stderr goes to the returned buffer
// and done is closed once it has exited (exit error in *err).
func (e *env) start(args ...string) (stderr *syncBuffer, done chan struct{}, err *error) {
	e.t.Helper()
	self, xerr := os.Executable()
	if xerr != nil {
		e.t.Fatal(xerr)
	}
	cmd := exec.Command(self, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	if xerr := cmd.Start(); xerr != nil {
		e.t.Fatal(xerr)
	}
	done = make(chan struct{})
	err = new(error)
	go func() {
		*err = cmd.Wait()
		close(done)
	}()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return stderr, done, err
}

// waitUntil polls cond for up to 20 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// savedBlobs is every blob `kiln save` writes for image, compressed layers
// also decompressed (as name+".tar").
func savedBlobs(t *testing.T, e *env, image string) map[string][]byte {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "img.tar")
	e.kiln("save", "-o", archive, image)
	out := map[string][]byte{}
	for name, data := range readTar(t, archive) {
		out[name] = data
		if rc, c, err := layer.Decompress(bytes.NewReader(data)); err == nil && c != layer.Uncompressed {
			if plain, err := io.ReadAll(rc); err == nil {
				out[name+".tar"] = plain
			}
			rc.Close()
		}
	}
	return out
}

// noPathUnder fails when a layer of image holds path or something below it.
func noPathUnder(t *testing.T, e *env, image string, paths ...string) {
	t.Helper()
	for f := range imageFiles(t, e, image) {
		for _, p := range paths {
			if f == p || strings.HasPrefix(f, p+"/") {
				t.Errorf("%s: a layer holds %s", image, f)
			}
		}
	}
}

func randomToken(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestRunCacheMount: a cache mount's contents persist from one build to the
// next, never enter a layer, and are not part of the cache key.
func TestRunCacheMount(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	mark := randomToken(t, "CACHE-MARK-")
	first := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" +
		"RUN --mount=type=cache,target=/var/cache/kt echo " + mark + " > /var/cache/kt/mark && echo built > /built\n"})
	e.kiln("build", "-q", "-t", "cache1", first)
	second := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest AS seed\n" +
		"RUN mkdir /seed && echo seeded > /seed/f && chown 1000 /seed\n" +
		"FROM localhost/bb:latest\n" +
		"RUN --mount=type=cache,target=/var/cache/kt cat /var/cache/kt/mark > /seen\n" +
		"RUN --mount=type=cache,id=seeded,target=/s,from=seed,source=/seed sh -c 'cat /s/f; stat -c %u /s; echo more > /s/g' > /seeded\n" +
		"RUN --mount=type=cache,id=seeded,target=/elsewhere,from=seed,source=/seed,sharing=locked cat /elsewhere/g > /persisted\n" +
		"RUN --mount=type=cache,id=other,target=/var/cache/kt test ! -e /var/cache/kt/mark && echo empty > /other\n" +
		"RUN --mount=type=cache,target=/c2,uid=1000,gid=50,mode=0750 stat -c '%u %g %a' /c2 > /c2stat\n" +
		"USER app\n" +
		"RUN --mount=type=cache,target=/home/app/.cache,uid=1000 touch /home/app/.cache/mine && echo ok > /home/app/wrote\n" +
		"RUN --mount=type=cache,target=/ro,ro sh -c 'touch /ro/x 2>/dev/null && echo writable || echo readonly' > /home/app/ro\n"})
	e.kiln("build", "-q", "-t", "cache2", second)
	for path, want := range map[string]string{
		"/seen": mark + "\n", "/other": "empty\n", "/c2stat": "1000 50 750\n",
		"/seeded": "seeded\n1000\n", "/persisted": "more\n",
		"/home/app/wrote": "ok\n", "/home/app/ro": "readonly\n",
	} {
		if got := catFile(t, e, "cache2", path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	// Nothing of the caches, not even their mount points, is in a layer.
	for _, img := range []string{"cache1", "cache2"} {
		noPathUnder(t, e, img, "/var/cache/kt", "/c2", "/ro", "/home/app/.cache", "/s", "/elsewhere")
	}
	for name, data := range imageFiles(t, e, "cache1") {
		if strings.Contains(data, mark) {
			t.Errorf("cache1: %s holds the cache's content", name)
		}
	}
	// The contents are not part of the key: the first build is cached even
	// though the cache changed since.
	r := e.run("", "build", "-t", "cache1b", first)
	if vs, _ := parsePlain(t, r.stderr); r.code != 0 || !stepCached(vs, "[2/2] ") {
		t.Errorf("rebuild after the cache changed: %d\n%s", r.code, r.stderr)
	}
}

// TestRunCacheMountSharing: sharing=locked makes a second user wait until
// the first is done; sharing=private gives it another directory instead.
// The first RUN holds the cache until the test, watching the cache
// directory in the store, lets it go.
func TestRunCacheMountSharing(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	for _, sharing := range []string{"locked", "private"} {
		t.Run(sharing, func(t *testing.T) {
			id := "share-" + sharing
			mount := "--mount=type=cache,id=" + id + ",target=/c,sharing=" + sharing
			holder := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" +
				"RUN " + mount + " sh -c 'touch /c/busy; while [ ! -e /c/release ]; do sleep 0.05; done; rm /c/busy /c/release'\n"})
			other := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" +
				"RUN " + mount + " sh -c 'if [ -e /c/busy ]; then echo OVERLAP; exit 1; fi; echo no-overlap'\n"})
			_, holderDone, holderErr := e.start("build", "--no-cache", holder)
			// The store keeps the cache id "/"+id under its sha256.
			sum := sha256.Sum256([]byte("/" + id))
			var busy string
			waitUntil(t, "the first RUN to hold the cache", func() bool {
				m, _ := filepath.Glob(filepath.Join(e.root, "cachemounts", hex.EncodeToString(sum[:]), "*", "busy"))
				if len(m) == 1 {
					busy = m[0]
				}
				return busy != ""
			})
			// On failure too: let the first RUN finish (cleanups run last first).
			t.Cleanup(func() { os.WriteFile(filepath.Join(filepath.Dir(busy), "release"), nil, 0o644) })
			if sharing == "private" {
				// A private user is not kept waiting: it gets its own directory.
				r := e.run("", "build", "--no-cache", other)
				if r.code != 0 || !strings.Contains(r.stderr, "no-overlap") || strings.Contains(r.stderr, "waiting for cache mount") {
					t.Errorf("private user beside a busy one: %d\n%s", r.code, r.stderr)
				}
			} else {
				stderr, done, err := e.start("build", "--no-cache", other)
				waitUntil(t, "the second build to wait for the lock", func() bool {
					return strings.Contains(stderr.String(), "waiting for cache mount /"+id+" (sharing=locked)")
				})
				select {
				case <-done:
					t.Fatalf("second build finished while the first holds the lock:\n%s", stderr)
				default:
				}
				os.WriteFile(filepath.Join(filepath.Dir(busy), "release"), nil, 0o644)
				<-done
				if *err != nil || !strings.Contains(stderr.String(), "no-overlap") {
					t.Errorf("second build: %v\n%s", *err, stderr)
				}
			}
			os.WriteFile(filepath.Join(filepath.Dir(busy), "release"), nil, 0o644)
			<-holderDone
			if *holderErr != nil {
				t.Errorf("first build: %v", *holderErr)
			}
		})
	}
}

// TestRunSecretMount: a secret is readable during its RUN only, as a file
// (mode, owner as asked) or an environment variable, and is in no layer,
// no history, no config, no cache record: nowhere in the store. A build
// with another secret value hits the cache.
func TestRunSecretMount(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	secret := randomToken(t, "S3CRET-")
	file := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM localhost/bb:latest
RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /len && stat -c '%a %u %g' /run/secrets/tok > /perm
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=5,gid=6 stat -c '%a %u %g' /etc/tok > /perm2
RUN --mount=type=secret,id=tok,env=TOK sh -c 'printf %s "$TOK" | sha256sum | cut -d" " -f1 > /envhash; test ! -e /run/secrets/tok'
RUN --mount=type=secret,id=absent sh -c 'test ! -e /run/secrets/absent && echo skipped > /absent'
RUN test ! -e /run/secrets/tok && test ! -e /etc/tok && echo gone > /after
`})
	id := strings.TrimSpace(e.kiln("build", "-q", "--secret", "id=tok,src="+file, "-t", "sec", ctx))
	sum := sha256.Sum256([]byte(secret))
	for path, want := range map[string]string{
		"/len": fmt.Sprintf("%d\n", len(secret)), "/perm": "400 0 0\n", "/perm2": "440 5 6\n",
		"/envhash": hex.EncodeToString(sum[:]) + "\n", "/absent": "skipped\n", "/after": "gone\n",
	} {
		if got := catFile(t, e, "sec", path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	noPathUnder(t, e, "sec", "/run", "/etc/tok")
	for name, data := range savedBlobs(t, e, "sec") {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("saved image: %s holds the secret", name)
		}
	}
	for _, out := range []string{e.kiln("history", "--no-trunc", "sec"), e.kiln("inspect", "sec")} {
		if strings.Contains(out, secret) {
			t.Errorf("history or config shows the secret:\n%s", out)
		}
	}
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(secret)) {
				t.Errorf("the store holds the secret in %s", p)
			}
		}
		return nil
	})

	// Another value, from the environment this time: the same keys, so
	// every step is cached and the image is the same.
	t.Setenv("KILN_TEST_TOK", "another value entirely")
	if again := strings.TrimSpace(e.kiln("build", "-q", "--secret", "id=tok,env=KILN_TEST_TOK", ctx)); again != id {
		t.Errorf("build with another secret value: %s, want the cached %s", again, id)
	}
	// A required secret that is missing fails the step that needs it.
	r := e.run("", "build", "--no-cache", "-t", "nosec", ctx)
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:2:") || !strings.Contains(r.stderr, "secret tok: secret not found") {
		t.Errorf("missing required secret: %d %q", r.code, r.stderr)
	}
	if r := e.run("", "build", "--secret", "id=x,src=/nonexistent/file", ctx); r.code == 0 || !strings.Contains(r.stderr, "--secret") {
		t.Errorf("--secret with a missing file: %d %q", r.code, r.stderr)
	}
}

// TestRunBindMount: bind mounts of the context (with .dockerignore
// applied, files owned by root), read-only unless rw — and rw writes are
// discarded —, of a stage and of an image; the bound files are part of the
// cache key, the rest of the context is not.
func TestRunBindMount(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `FROM localhost/bb:latest AS stage
RUN mkdir /made && echo from-stage > /made/f
FROM localhost/bb:latest
RUN --mount=type=bind,source=src,target=/src sh -c 'cat /src/a.txt /src/sub/b.txt > /cat; ls -A /src > /ls; stat -c "%u %g" /src/a.txt > /owner; if touch /src/new 2>/dev/null; then echo writable; else echo readonly; fi > /ro'
RUN --mount=type=bind,source=src,target=/src,rw sh -c 'touch /src/new && echo more >> /src/a.txt && echo wrote > /rw'
RUN --mount=type=bind,source=src,target=/src sh -c 'test ! -e /src/new && cat /src/a.txt > /after'
RUN --mount=type=bind,source=src/a.txt,target=/one.txt cat /one.txt > /single
RUN --mount=type=bind,from=stage,source=/made,target=/m cat /m/f > /fromstage
RUN --mount=type=bind,from=localhost/bb:latest,source=/etc,target=/imgetc cat /imgetc/group > /fromimage
RUN --mount=type=bind,target=/whole ls /whole > /whole.ls
`,
		".dockerignore":   "src/ignored.txt\n",
		"src/a.txt":       "alpha\n",
		"src/sub/b.txt":   "beta\n",
		"src/ignored.txt": "ignored\n",
		"outside.txt":     "not bound by the first RUNs\n",
	})
	os.Chown(filepath.Join(ctx, "src", "a.txt"), 1234, 5678)
	build := func() string {
		t.Helper()
		return strings.TrimSpace(e.kiln("build", "-q", "-t", "bind", ctx))
	}
	id := build()
	for path, want := range map[string]string{
		"/cat": "alpha\nbeta\n", "/ls": "a.txt\nsub\n", "/owner": "0 0\n", "/ro": "readonly\n",
		"/rw": "wrote\n", "/after": "alpha\n", "/single": "alpha\n", "/fromstage": "from-stage\n",
		"/whole.ls": "Dockerfile\noutside.txt\nsrc\n",
	} {
		if got := catFile(t, e, "bind", path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if got := catFile(t, e, "bind", "/fromimage"); !strings.Contains(got, "staff:x:50:app") {
		t.Errorf("/fromimage = %q", got)
	}
	noPathUnder(t, e, "bind", "/src", "/one.txt", "/m", "/imgetc", "/whole")
	// The context is never modified.
	if data, _ := os.ReadFile(filepath.Join(ctx, "src", "a.txt")); string(data) != "alpha\n" {
		t.Errorf("context src/a.txt = %q", data)
	}
	if _, err := os.Stat(filepath.Join(ctx, "src", "new")); err == nil {
		t.Error("rw bind mount wrote into the context")
	}

	// An ignored file does not count; a bound one does.
	os.WriteFile(filepath.Join(ctx, "src", "ignored.txt"), []byte("changed\n"), 0o644)
	if again := build(); again != id {
		t.Errorf("changing an ignored file rebuilt the image")
	}
	os.WriteFile(filepath.Join(ctx, "src", "sub", "b.txt"), []byte("BETA\n"), 0o644)
	if again := build(); again == id {
		t.Errorf("changing a bound file kept the cached image")
	}
	if got := catFile(t, e, "bind", "/cat"); got != "alpha\nBETA\n" {
		t.Errorf("/cat after the change = %q", got)
	}
	if r := e.run("", "build", writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nRUN --mount=type=bind,source=nope,target=/x true\n"})); r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:2:") || !strings.Contains(r.stderr, "not found in the build context") {
		t.Errorf("missing bind source: %d %q", r.code, r.stderr)
	}
}

// TestRunTmpfsMount: a tmpfs of the size asked for, gone after the RUN; an
// ssh mount is refused.
func TestRunTmpfsMount(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" +
		"RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'grep \" /scratch \" /proc/mounts > /mounts; echo data > /scratch/f'\n"})
	e.kiln("build", "-q", "-t", "tmpfs", ctx)
	if got := catFile(t, e, "tmpfs", "/mounts"); !strings.HasPrefix(got, "tmpfs /scratch tmpfs ") || !strings.Contains(got, "size=1024k") {
		t.Errorf("/mounts = %q", got)
	}
	noPathUnder(t, e, "tmpfs", "/scratch")
	ssh := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nRUN --mount=type=ssh true\n"})
	if r := e.run("", "build", ssh); r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:2: RUN --mount=type=ssh: not supported") {
		t.Errorf("ssh mount: %d %q", r.code, r.stderr)
	}
}

// testTar writes a tar of entries: a name ending in / is a directory, "l:"
// and "h:" bodies make symlinks and hardlinks.
func testTar(t *testing.T, entries [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e[0], Mode: 0o644, Uid: 1234, Gid: 5678, ModTime: time.Unix(1e9, 0)}
		switch {
		case strings.HasSuffix(e[0], "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case strings.HasPrefix(e[1], "l:"):
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e[1][2:]
		case strings.HasPrefix(e[1], "h:"):
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e[1][2:]
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e[1]))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(e[1]))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// compressed returns data in format: tar, gzip, bzip2 and xz (Debian's
// tools), zstd.
func compressed(t *testing.T, data []byte, format string) []byte {
	t.Helper()
	switch format {
	case "tar":
		return data
	case "gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		return b.Bytes()
	case "zstd":
		enc, _ := zstd.NewWriter(nil)
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	}
	cmd := exec.Command(format, "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s (Debian's %s package; make deps installs it): %v", format, format, err)
	}
	return out
}

// TestAddArchives: ADD extracts local archives of every format into the
// destination (owners from the archive, or --chown for every entry;
// --chmod does not apply), copies what is not an archive, and keeps
// archives packed with --unpack=false.
func TestAddArchives(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	archive := testTar(t, [][2]string{{"dir/", ""}, {"dir/f", "content\n"}, {"link", "l:dir/f"}})
	files := map[string]string{"plain.txt": "plain\n", "notarchive.tar.gz": "only a name\n"}
	for ext, format := range map[string]string{"tar": "tar", "tar.gz": "gzip", "tar.bz2": "bzip2", "tar.xz": "xz", "tar.zst": "zstd"} {
		files["a."+ext] = string(compressed(t, archive, format))
	}
	files["Dockerfile"] = `FROM localhost/bb:latest
ADD a.tar /x/tar/
ADD a.tar.gz /x/gzip
ADD a.tar.bz2 /x/bzip2
ADD a.tar.xz /x/xz
ADD a.tar.zst /x/zstd
ADD --chown=7:8 a.tar.gz /x/chown/
ADD --chmod=0600 a.tar.xz /x/chmod/
ADD a.tar.gz plain.txt notarchive.tar.gz /x/mixed/
ADD --unpack=false a.tar.gz /x/packed/
RUN find /x | sort | xargs stat -c '%n %u:%g %a %F' > /listing
`
	ctx := writeContext(t, files)
	e.kiln("build", "-q", "-t", "archives", ctx)
	var want []string
	for _, d := range []string{"bzip2", "chmod", "gzip", "tar", "xz", "zstd", "chown", "mixed"} {
		owner := "1234:5678"
		if d == "chown" {
			owner = "7:8"
		}
		root := "0:0"
		if d == "chown" {
			root = "7:8"
		}
		want = append(want,
			"/x/"+d+" "+root+" 755 directory",
			"/x/"+d+"/dir "+owner+" 755 directory",
			"/x/"+d+"/dir/f "+owner+" 644 regular file",
			"/x/"+d+"/link "+owner+" 777 symbolic link")
	}
	want = append(want, "/x 0:0 755 directory",
		"/x/mixed/plain.txt 0:0 644 regular file", "/x/mixed/notarchive.tar.gz 0:0 644 regular file",
		"/x/packed 0:0 755 directory", "/x/packed/a.tar.gz 0:0 644 regular file")
	got := strings.Split(strings.TrimSpace(catFile(t, e, "archives", "/listing")), "\n")
	compareText(t, "ADD listing", sortedLines(want), sortedLines(got))
	if c := catFile(t, e, "archives", "/x/zstd/dir/f"); c != "content\n" {
		t.Errorf("/x/zstd/dir/f = %q", c)
	}
}

func sortedLines(lines []string) string {
	s := append([]string(nil), lines...)
	sort.Strings(s)
	return strings.Join(s, "\n") + "\n"
}

// TestAddHostileArchives: names with ../ or a leading /, and writes
// through symlinks pointing out, land inside the destination; hardlinks
// and writes through links to outside paths fail the build; nothing is
// ever written outside the destination, in the image or on the host.
func TestAddHostileArchives(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	hostDir := t.TempDir() // a host directory that must stay empty
	escape := randomToken(t, "kiln-escape-")
	contained := testTar(t, [][2]string{
		{"../../../../../../../.." + hostDir + "/" + escape, "x"},
		{"../../../etc/" + escape, "x"},
		{"/bin/" + escape, "x"},
		{"toroot", "l:/"},
		{"toroot/through-root", "x"},
		{"up", "l:../../../../.."},
		{"up/through-up", "x"},
	})
	ctx := writeContext(t, map[string]string{
		"contained.tar": string(contained),
		"hardlink.tar":  string(testTar(t, [][2]string{{"hl", "h:../../../etc/passwd"}})),
		"hostlink.tar":  string(testTar(t, [][2]string{{"hostlink", "l:" + hostDir}, {"hostlink/pwned", "x"}})),
		"Dockerfile":    "FROM localhost/bb:latest\nADD contained.tar /dest/\nRUN cd /dest && find . | sort > /listing\n",
		"Dockerfile.hl": "FROM localhost/bb:latest\nADD hardlink.tar /dest/\n",
		"Dockerfile.hs": "FROM localhost/bb:latest\nADD hostlink.tar /dest/\n",
	})
	e.kiln("build", "-q", "-t", "hostile", ctx)
	got := catFile(t, e, "hostile", "/listing")
	for _, p := range []string{"./" + strings.TrimPrefix(hostDir, "/") + "/" + escape, "./etc/" + escape, "./bin/" + escape, "./through-root", "./through-up", "./toroot", "./up"} {
		if !strings.Contains(got, p+"\n") {
			t.Errorf("%s not inside /dest:\n%s", p, got)
		}
	}
	files := imageFiles(t, e, "hostile")
	for f := range files {
		if strings.Contains(f, escape) || strings.HasSuffix(f, "through-root") || strings.HasSuffix(f, "through-up") {
			if !strings.HasPrefix(f, "/dest/") {
				t.Errorf("written outside /dest: %s", f)
			}
		}
	}
	for _, df := range []string{"Dockerfile.hl", "Dockerfile.hs"} {
		r := e.run("", "build", "-f", filepath.Join(ctx, df), "-t", "hostile-fail", ctx)
		if r.code == 0 || !strings.Contains(r.stderr, df+":2: ADD ") {
			t.Errorf("%s: %d %q", df, r.code, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(hostDir); len(ents) != 0 {
		t.Errorf("the host directory %s was written: %v", hostDir, ents)
	}
	if _, err := os.Stat("/etc/" + escape); err == nil {
		t.Errorf("/etc/%s written on the host", escape)
	}
}

// TestAddURL: ADD downloads from a server on 127.0.0.1: named after the URL
// path, mode 0600, mtime from Last-Modified, archives not extracted unless
// --unpack=true, --checksum verified; the key is the content.
func TestAddURL(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	var content atomic.Value
	content.Store("remote content\n")
	modTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	archive := compressed(t, testTar(t, [][2]string{{"d/", ""}, {"d/f", "in archive\n"}}), "gzip")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file.txt":
			w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
			io.WriteString(w, content.Load().(string))
		case "/arch.tar.gz":
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte("remote content\n"))
	good := "sha256:" + hex.EncodeToString(sum[:])
	dockerfile := func(extra string) string {
		return "FROM localhost/bb:latest\n" +
			"ADD " + srv.URL + "/file.txt /dl/\n" +
			"ADD " + srv.URL + "/file.txt /named\n" +
			"ADD --checksum=" + good + " " + srv.URL + "/file.txt /checked\n" +
			"ADD " + srv.URL + "/arch.tar.gz /dl/\n" +
			"ADD --unpack=true " + srv.URL + "/arch.tar.gz /unpacked/\n" +
			"ADD --chown=7:8 --chmod=640 " + srv.URL + "/file.txt /owned\n" +
			extra
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": dockerfile(
		"RUN stat -c '%n %u:%g %a %Y' /dl/file.txt /named /checked /owned /dl/arch.tar.gz > /stat && cat /unpacked/d/f > /unpacked.f\n")})
	id := strings.TrimSpace(e.kiln("build", "-q", "-t", "url", ctx))
	wantStat := fmt.Sprintf("/dl/file.txt 0:0 600 %[1]d\n/named 0:0 600 %[1]d\n/checked 0:0 600 %[1]d\n/owned 7:8 640 %[1]d\n/dl/arch.tar.gz 0:0 600 0\n", modTime.Unix())
	if got := catFile(t, e, "url", "/stat"); got != wantStat {
		t.Errorf("/stat = %q, want %q", got, wantStat)
	}
	if got := catFile(t, e, "url", "/unpacked.f"); got != "in archive\n" {
		t.Errorf("/unpacked.f = %q", got)
	}
	if got := catFile(t, e, "url", "/named"); got != "remote content\n" {
		t.Errorf("/named = %q", got)
	}
	// The same content: cached. Other content: downloaded again (and the
	// pinned checksum now fails, naming the URL).
	if again := strings.TrimSpace(e.kiln("build", "-q", ctx)); again != id {
		t.Errorf("unchanged URL content rebuilt the image")
	}
	content.Store("new content\n")
	r := e.run("", "build", "-q", ctx)
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:4:") || !strings.Contains(r.stderr, "digest mismatch for "+srv.URL+"/file.txt") {
		t.Errorf("bad checksum: %d %q", r.code, r.stderr)
	}
	noCheck := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nADD " + srv.URL + "/file.txt /named\n"})
	e.kiln("build", "-q", "-t", "url2", noCheck)
	if got := catFile(t, e, "url2", "/named"); got != "new content\n" {
		t.Errorf("/named after the change = %q", got)
	}
	missing := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nADD " + srv.URL + "/missing /x\n"})
	if r := e.run("", "build", missing); r.code == 0 || !strings.Contains(r.stderr, srv.URL+"/missing") || !strings.Contains(r.stderr, "404") {
		t.Errorf("404: %d %q", r.code, r.stderr)
	}
	for df, want := range map[string]string{
		"ADD --checksum=" + good + " local.txt /x\n":                      "checksum requires HTTP(S) or Git sources",
		"ADD --checksum=sha256:abc " + srv.URL + "/file.txt /x\n":         "ADD --checksum=sha256:abc",
		"ADD git@github.com:moby/buildkit.git /x\n":                       "adding a Git repository is not supported",
		"ADD " + srv.URL + "/file.txt " + srv.URL + "/file.txt /single\n": "must be a directory",
	} {
		c := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" + df, "local.txt": "x"})
		if r := e.run("", "build", c); r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "Dockerfile:2:") {
			t.Errorf("%s: %d %q, want %q", strings.TrimSpace(df), r.code, r.stderr, want)
		}
	}
}
