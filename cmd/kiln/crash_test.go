package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// startKiln starts kiln in the background; wait returns its exit status and
// whether a signal ended it.
func (e *env) startKiln(args ...string) (cmd *exec.Cmd, wait func() (code int, signaled bool, stderr string)) {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd = exec.Command(self, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd, func() (int, bool, string) {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			ws := ee.Sys().(syscall.WaitStatus)
			return ee.ExitCode(), ws.Signaled(), errb.String()
		}
		return 0, false, errb.String()
	}
}

// checkReport runs `system check --format json`.
func (e *env) checkReport(args ...string) (cache.CheckReport, int) {
	e.t.Helper()
	r := e.run("", append([]string{"system", "check", "--format", "json"}, args...)...)
	var rep cache.CheckReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		e.t.Fatalf("system check: exit %d: %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return rep, r.code
}

// saveTemps lists the save temp files in dir.
func saveTemps(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".kiln-save-*"))
	return m
}

// bigImage builds an image whose save takes a while: a layer of 48 MB of
// random data (gzip cannot shrink it).
func bigImage(e *env) {
	e.t.Helper()
	e.importBase("localhost/bb:latest")
	e.kiln("build", "-q", "-t", "big", writeContext(e.t, map[string]string{
		"Dockerfile": "FROM localhost/bb\nRUN head -c 48000000 /dev/urandom > /random\n",
	}))
}

// interruptSave starts `save -o out big`, sends sig once its temp file
// exists, and reports whether the signal came before the save ended.
func interruptSave(e *env, out string, sig syscall.Signal) (interrupted bool) {
	e.t.Helper()
	cmd, wait := e.startKiln("save", "-o", out, "big")
	dir := filepath.Dir(out)
	waitUntil(e.t, "the save's temp file", func() bool {
		for _, p := range saveTemps(dir) {
			if strings.Contains(p, fmt.Sprintf("-%d-", cmd.Process.Pid)) {
				return true
			}
		}
		return cmd.ProcessState != nil || exists(out)
	})
	cmd.Process.Signal(sig)
	code, signaled, stderr := wait()
	switch {
	case sig == syscall.SIGKILL && signaled:
		return true
	case sig != syscall.SIGKILL && code != 0:
		if !strings.Contains(stderr, "context canceled") {
			e.t.Errorf("interrupted save: exit %d: %s", code, stderr)
		}
		return true
	}
	return false // finished before the signal
}

// TestSaveTempFiles: a failed or interrupted save removes its temp file; a
// killed one's is reported by system check and removed by the next save
// into the same directory, which leaves alone the temp file of a live save.
func TestSaveTempFiles(t *testing.T) {
	e := newEnv(t)
	bigImage(e)
	dir := t.TempDir()
	out := filepath.Join(dir, "big.tar")

	if r := e.run("", "save", "-o", out, "no-such-image"); r.code == 0 {
		t.Fatal("save of a missing image succeeded")
	}
	if tmps := saveTemps(dir); len(tmps) != 0 || exists(out) {
		t.Fatalf("failed save left %v", tmps)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		got := false
		for try := 0; try < 5 && !got; try++ {
			os.Remove(out)
			got = interruptSave(e, out, sig)
		}
		if !got {
			t.Fatalf("%v: the save always finished before the signal", sig)
		}
		if tmps := saveTemps(dir); len(tmps) != 0 || exists(out) {
			t.Fatalf("%v: save left %v (output exists: %v)", sig, tmps, exists(out))
		}
	}

	killed := false
	for try := 0; try < 5 && !killed; try++ {
		os.Remove(out)
		killed = interruptSave(e, out, syscall.SIGKILL)
	}
	if !killed {
		t.Fatal("the save always finished before SIGKILL")
	}
	stale := saveTemps(dir)
	if len(stale) != 1 || exists(out) {
		t.Fatalf("after SIGKILL: temps %v, output exists %v", stale, exists(out))
	}
	rep, code := e.checkReport()
	if code != 1 || len(problemsNaming(rep, stale[0])) != 1 {
		t.Errorf("system check (exit %d) does not report %s: %+v", code, stale[0], rep.Problems)
	}

	// A live save's temp file: this process holds its lock.
	live := filepath.Join(dir, fmt.Sprintf(".kiln-save-%d-1", os.Getpid()))
	lf, err := os.Create(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// The temp file of a save killed while using another store (no note
	// in this one): its pid is not alive, no one holds its lock.
	orphan := filepath.Join(dir, ".kiln-save-999999999-1")
	os.WriteFile(orphan, []byte("partial"), 0o644)
	e.kiln("save", "-o", out, "big")
	if got := saveTemps(dir); len(got) != 1 || got[0] != live {
		t.Errorf("after the next save: %v, want only the live %s", got, live)
	}
	if out, err := exec.Command("skopeo", "inspect", "oci-archive:"+out).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect: %v\n%s", err, out)
	}
	if rep, code := e.checkReport(); code != 0 {
		t.Errorf("system check after the next save: exit %d: %+v", code, rep.Problems)
	}
}

func problemsNaming(rep cache.CheckReport, object string) []cache.Problem {
	var out []cache.Problem
	for _, p := range rep.Problems {
		if p.Object == object {
			out = append(out, p)
		}
	}
	return out
}

// TestKillTorture kills kiln with SIGKILL at random moments of build, load,
// save, pull and prune, about 20 times. After each kill, system check finds
// nothing damaged (only the debris of the killed process), a rebuild gives
// the same image ID, and the check after it is clean: the rebuild swept the
// debris.
func TestKillTorture(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t, registrytest.Options{})
	// The base comes from the registry, so that a build after image prune
	// -af pulls the same base again.
	e.importBase("localhost/bb:latest")
	base := reg.Ref("kiln/bb:base")
	e.kiln("tag", "localhost/bb", base)
	e.kiln("push", base)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN yes kiln-layer-data | head -c 4000000 > /data && echo one > /one\nRUN seq 1 200000 > /seq\nRUN rm /one && echo two > /two\n",
	})
	build := func(extra ...string) []string {
		return append(append([]string{"build", "-q", "--source-date-epoch", "0"}, extra...), "-t", "app", ctx)
	}
	want := strings.TrimSpace(e.kiln(build()...))
	ref := reg.Ref("kiln/app:v1")
	e.kiln("tag", "app", ref)
	e.kiln("push", ref)
	saved := filepath.Join(t.TempDir(), "app.tar")
	e.kiln("save", "-o", saved, "app")
	outDir := t.TempDir()

	type op struct {
		name    string
		prepare []string // run to completion first (so the op has work to do)
		args    []string
	}
	ops := []op{
		{"build", nil, build("--no-cache")},
		{"load", []string{"image", "prune", "-af"}, []string{"load", "-i", saved}},
		{"save", nil, []string{"save", "-o", filepath.Join(outDir, "out.tar"), "app"}},
		{"pull", []string{"image", "prune", "-af"}, []string{"pull", ref}},
		{"prune", nil, []string{"builder", "prune", "-af"}},
		{"image prune", []string{"rmi", "-f", "app"}, []string{"image", "prune", "-af"}},
	}
	// How long each op takes here and now, to kill it at a random moment
	// inside that span.
	span := map[string]time.Duration{}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 0
	for i := 0; i < 40 && kills < 20; i++ {
		o := ops[i%len(ops)]
		if o.prepare != nil {
			e.run("", o.prepare...)
		}
		start := time.Now()
		cmd, wait := e.startKiln(o.args...)
		if d, ok := span[o.name]; ok {
			time.Sleep(time.Duration(rng.Int63n(int64(d) + 1)))
			cmd.Process.Signal(syscall.SIGKILL)
		}
		code, signaled, stderr := wait()
		if _, ok := span[o.name]; !ok {
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", o.name, code, stderr)
			}
			span[o.name] = time.Since(start)
		} else if signaled {
			kills++
		} else if code != 0 {
			t.Errorf("%s (not killed): exit %d: %s", o.name, code, stderr)
		}

		rep, _ := e.checkReport()
		for _, p := range rep.Problems {
			if p.Kind != cache.KindDebris {
				t.Errorf("after %s (killed: %v): %v", o.name, signaled, p)
			}
		}
		if got := strings.TrimSpace(e.kiln(build()...)); got != want {
			t.Fatalf("after %s: rebuild gives %s, first build %s", o.name, got, want)
		}
		// The rebuild, alone in the store, swept the debris.
		if rep, code := e.checkReport("--quick"); code != 0 || len(rep.Problems) != 0 {
			t.Errorf("after %s and a rebuild: exit %d: %+v", o.name, code, rep.Problems)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d kills", kills)
	if kills < 10 {
		t.Errorf("only %d of the runs were killed before they ended", kills)
	}
}

// TestConcurrentBuildsAndPrunes runs 8 builds of overlapping Dockerfiles
// into one store while builder and image prunes loop beside them: every
// build succeeds, and every image saved afterwards is read by skopeo. Two
// of the builds are untagged (dangling at once), so that the image prunes
// remove images whose layers the other builds share; the builder prunes
// remove every cache record, in use or not.
func TestConcurrentBuildsAndPrunes(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	const n, tagged = 8, 6
	ctxs := make([]string, n)
	for i := range n {
		// Pairs share their first steps; all share the base.
		ctxs[i] = writeContext(t, map[string]string{
			"Dockerfile": fmt.Sprintf("FROM localhost/bb\nRUN echo shared > /shared\nRUN echo pair-%d > /pair\nCOPY f /f\nRUN echo %d > /own && seq 1 %d > /seq\n", i/2, i, 1000*(i+1)),
			"f":          fmt.Sprintf("file %d\n", i%3),
		})
	}
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"build", "-q", ctxs[i]}
			if i < tagged {
				args = []string{"build", "-q", "-t", fmt.Sprintf("c%d", i), ctxs[i]}
			}
			if r := e.run("", args...); r.code != 0 {
				errs[i] = r.stderr
			}
		}()
	}
	done := make(chan struct{})
	var prunes sync.WaitGroup
	prunes.Add(1)
	go func() {
		defer prunes.Done()
		for j := 0; j < 30; j++ {
			select {
			case <-done:
				return
			default:
			}
			args := []string{"builder", "prune", "-af"}
			if j%2 == 1 {
				args = []string{"image", "prune", "-f"} // the dangling ones
			}
			if r := e.run("", args...); r.code != 0 {
				t.Errorf("%v: exit %d: %s", args, r.code, r.stderr)
			}
		}
	}()
	wg.Wait()
	close(done)
	prunes.Wait()
	for i, msg := range errs {
		if msg != "" {
			t.Errorf("build %d: %s", i, msg)
		}
	}
	dir := t.TempDir()
	for i := range tagged {
		name := fmt.Sprintf("c%d", i)
		out := filepath.Join(dir, name+".tar")
		e.kiln("save", "-o", out, name)
		if b, err := exec.Command("skopeo", "inspect", "oci-archive:"+out).CombinedOutput(); err != nil {
			t.Errorf("skopeo inspect %s: %v\n%s", name, err, b)
		}
		if b, err := exec.Command("skopeo", "copy", "oci-archive:"+out, "dir:"+filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Errorf("skopeo copy %s: %v\n%s", name, err, b)
		}
	}
	if rep, code := e.checkReport(); code != 0 {
		t.Errorf("system check: exit %d: %+v", code, rep.Problems)
	}
}
