package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/proc"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// rlEnv runs kiln (this test binary) as an ordinary user.
type rlEnv struct {
	t *testing.T
	u *kilntest.User
}

func newRootlessEnv(t *testing.T, subIDs bool) *rlEnv {
	t.Helper()
	var u *kilntest.User
	if subIDs {
		u = kilntest.RootlessUser(t, "")
	} else {
		u = kilntest.RootlessUserWithoutSubIDs(t, "")
	}
	u.Env = append(u.Env, "KILN_TEST_MAIN=1", cache.DeleterTestEnv+"=1")
	return &rlEnv{t: t, u: u}
}

func (e *rlEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	cmd := e.u.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run kiln %v as %s: %v", args, e.u.Name, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (e *rlEnv) kiln(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("kiln %s (as %s): exit %d\nstderr:\n%s", strings.Join(args, " "), e.u.Name, r.code, r.stderr)
	}
	return r.stdout
}

// context writes a build context the user can read.
func (e *rlEnv) context(files map[string]string) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.u.Home, "ctx-")
	if err != nil {
		e.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	return dir
}

// importBase imports the tests' busybox base image (files of root and of
// uid 1000) as name, through stdin: the user cannot read the tar.
func (e *rlEnv) importBase(name string, args ...string) {
	e.t.Helper()
	importBaseInto(e.t, func(tarPath string) {
		data, err := os.ReadFile(tarPath)
		if err != nil {
			e.t.Fatal(err)
		}
		if r := e.run(string(data), append(args, "import", "-", name)...); r.code != 0 {
			e.t.Fatalf("import as %s: exit %d: %s", e.u.Name, r.code, r.stderr)
		}
	})
}

// pausePids are the user's pause processes.
func (e *rlEnv) pausePids() []int {
	var out []int
	for _, pid := range proc.All() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if string(bytes.TrimRight(cmdline, "\x00")) == "kiln-rootless-pause" &&
			strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", e.u.UID)) {
			out = append(out, pid)
		}
	}
	return out
}

// multiOwnerContext is a build context whose image has files of several
// owners made by RUN chown, COPY --chown and ADD of a tar.
func multiOwnerContext(t *testing.T, write func(map[string]string) string) string {
	tarball := kilntest.Tar(t,
		kilntest.TarEntry{Name: "t/", Type: tar.TypeDir, Mtime: 1},
		kilntest.TarEntry{Name: "t/root", Body: "r", Mtime: 1},
		kilntest.TarEntry{Name: "t/app", Body: "a", UID: 1000, GID: 1000, Mtime: 1},
		kilntest.TarEntry{Name: "t/nobody", Body: "n", UID: 65534, GID: 65534, Mtime: 1},
	)
	return write(map[string]string{
		"Dockerfile": "FROM localhost/bb\n" +
			"RUN mkdir /data && echo a > /data/a && chown 1000:1000 /data/a && echo b > /data/b && chown 65534:65534 /data/b && echo 'u2:x:2000:2000::/:/bin/sh' >> /etc/passwd && touch /data/u2 && chown 2000:50 /data/u2\n" +
			"COPY --chown=1000:1000 f /f\n" +
			"ADD owners.tar /\n",
		"f":          "f\n",
		"owners.tar": string(tarball),
	})
}

// multiOwnerListing is what ls -ln shows of the owners in that image.
const multiOwnerListing = "1000 1000 /data/a\n65534 65534 /data/b\n2000 50 /data/u2\n1000 1000 /f\n0 0 /t/root\n1000 1000 /t/app\n65534 65534 /t/nobody\n"

const listOwners = "for f in /data/a /data/b /data/u2 /f /t/root /t/app /t/nobody; do stat -c '%u %g %n' $f; done"

// TestRootlessCycle: an ordinary user with a subordinate range builds,
// saves, loads, runs, pushes and pulls with kiln's default store, and the
// multi-owner image has the same ID as root's build of it.
func TestRootlessCycle(t *testing.T) {
	e := newRootlessEnv(t, true)
	e.importBase("localhost/bb:latest")
	store := filepath.Join(e.u.Home, ".local/share/kiln")
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("default rootless store: %v", err)
	}
	info := e.kiln("info")
	for _, want := range []string{"Rootless: true", store, e.u.RuntimeDir + "/kiln", fmt.Sprintf("0:%d:1", e.u.UID), fmt.Sprintf("1:%d:65536", e.u.SubID)} {
		if !strings.Contains(info, want) {
			t.Errorf("kiln info lacks %q:\n%s", want, info)
		}
	}

	// The multi-owner build, rootless and as root: same image.
	ctx := multiOwnerContext(t, e.context)
	id := strings.TrimSpace(e.kiln("build", "-q", "--network", "none", "--source-date-epoch", "0", "-t", "owners", ctx))
	if got := e.kiln("run", "--rm", "--network", "none", "owners", "sh", "-c", listOwners); got != multiOwnerListing {
		t.Errorf("owners in the rootless image:\n%s\nwant:\n%s", got, multiOwnerListing)
	}
	// The same base: an import records its time.
	e.kiln("save", "-o", filepath.Join(e.u.Home, "bb.tar"), "localhost/bb:latest")
	root := newEnv(t)
	root.kiln("load", "-i", filepath.Join(e.u.Home, "bb.tar"))
	rootID := strings.TrimSpace(root.kiln("build", "-q", "--network", "none", "--source-date-epoch", "0", "-t", "owners", multiOwnerContext(t, func(f map[string]string) string { return writeContext(t, f) })))
	if id != rootID {
		t.Errorf("rootless build %s, root build %s of the same Dockerfile", id, rootID)
	}
	// On the host, uid 1000 of the image is a subordinate uid.
	var hostOwned bool
	filepath.Walk(store, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, "/t/app") {
			st := fi.Sys().(*syscall.Stat_t)
			hostOwned = int(st.Uid) == e.u.SubID+999
		}
		return nil
	})
	if !hostOwned {
		t.Errorf("no /t/app owned by host uid %d (subordinate uid of 1000) in the store", e.u.SubID+999)
	}

	// Cache mounts and secrets.
	secret := filepath.Join(e.u.Home, "token")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	os.Chown(secret, e.u.UID, e.u.GID)
	ctx2 := e.context(map[string]string{"Dockerfile": "FROM localhost/bb\n" +
		"RUN --mount=type=cache,target=/cache,uid=1000 echo x >> /cache/n && stat -c %u /cache > /cacheowner\n" +
		"RUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = s3cret && echo ok > /secret-ok\n" +
		"CMD [\"sh\", \"-c\", \"echo started; cat /cacheowner /secret-ok; sleep 300\"]\n"})
	e.kiln("build", "-q", "--network", "none", "--secret", "id=tok,src="+secret, "-t", "localhost/app:v1", ctx2)

	// save, load into a second store.
	e.kiln("save", "-o", filepath.Join(e.u.Home, "app.tar"), "localhost/app:v1")
	store2 := filepath.Join(e.u.Home, "store2")
	e.kiln("--root", store2, "load", "-i", filepath.Join(e.u.Home, "app.tar"))
	if out := e.kiln("--root", store2, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "localhost/app:v1") {
		t.Errorf("images of the second store: %q", out)
	}

	// A container that outlives the CLI: run -d, exec, logs, stop, rm.
	e.kiln("volume", "create", "vol")
	e.kiln("--root", store2, "run", "-d", "--network", "none", "--name", "c1", "localhost/app:v1")
	e.kiln("run", "-d", "--network", "none", "--name", "c1", "-v", "vol:/vol", "localhost/app:v1")
	// Its monitor runs from the sealed overlay of the binary, not from a
	// copy of it in a memfd (tens of ms for every rootless command).
	for _, pid := range proc.All() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		var st syscall.Stat_t
		if !bytes.HasPrefix(cmdline, []byte("kiln-monitor\x00")) || syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) != nil || int(st.Uid) != e.u.UID {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.HasPrefix(exe, "/memfd:") {
			t.Errorf("monitor %d runs from %s: rootless kiln copied itself instead of sealing an overlay", pid, exe)
		}
	}
	if out := e.kiln("exec", "c1", "sh", "-c", "echo hello > /vol/h && id -u && cat /vol/h"); out != "0\nhello\n" {
		t.Errorf("exec: %q", out)
	}
	if out := e.kiln("exec", "-u", "1000", "c1", "id", "-u"); out != "1000\n" {
		t.Errorf("exec -u 1000: %q", out)
	}
	e.kiln("cp", "c1:/secret-ok", filepath.Join(e.u.Home, "secret-ok"))
	if data, err := os.ReadFile(filepath.Join(e.u.Home, "secret-ok")); err != nil || string(data) != "ok\n" {
		t.Errorf("cp out of the container: %q, %v", data, err)
	}
	for i := 0; ; i++ {
		if out := e.kiln("logs", "c1"); strings.Contains(out, "started\n1000\nok\n") {
			break
		} else if i == 200 {
			t.Fatalf("logs: %q", out)
		}
		e.kiln("wait", "--condition", "not-running", "--timeout", "0.05", "c1")
	}
	if out := e.kiln("top", "c1"); !strings.Contains(out, "sleep 300") {
		t.Errorf("top: %q", out)
	}
	if e.kiln("info", "--format", "{{.CgroupsUnavailable}}") != "\n" {
		// No cgroups: what needs them says so in one line.
		for _, args := range [][]string{{"pause", "c1"}, {"stats", "--no-stream", "c1"}, {"update", "--memory", "64m", "c1"}} {
			r := e.run("", args...)
			if r.code == 0 || !strings.Contains(r.stderr, "needs cgroups, and rootless kiln has no cgroups here") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("kiln %v: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	}
	e.kiln("stop", "-t", "1", "c1")
	e.kiln("--root", store2, "rm", "-f", "c1")
	e.kiln("rm", "c1")
	if out := e.kiln("run", "--rm", "--network", "none", "-v", "vol:/vol", "localhost/bb", "cat", "/vol/h"); out != "hello\n" {
		t.Errorf("volume after the container: %q", out)
	}

	// Limits need cgroups: refused with the reason (this host has none to
	// delegate).
	if e.kiln("info", "--format", "{{.CgroupVersion}}") != "2\n" {
		for _, args := range [][]string{
			{"run", "--rm", "--network", "none", "--memory", "64m", "localhost/bb", "true"},
			{"create", "--network", "none", "--pids-limit", "10", "localhost/bb", "true"},
		} {
			r := e.run("", args...)
			if r.code == 0 || !strings.Contains(r.stderr, "needs cgroups, and rootless kiln has no cgroups here") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("kiln %v: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	}
	if r := e.run("", "run", "--rm", "--privileged", "--network", "none", "localhost/bb", "true"); r.code == 0 || !strings.Contains(r.stderr, "--privileged is not supported by rootless kiln") {
		t.Errorf("run --privileged: exit %d, %q", r.code, r.stderr)
	}
	insecure := e.context(map[string]string{"Dockerfile": "FROM localhost/bb\nRUN --security=insecure true\n"})
	if r := e.run("", "build", "--network", "none", "--allow", "security.insecure", insecure); r.code == 0 || !strings.Contains(r.stderr, "--security=insecure is not supported by rootless kiln") {
		t.Errorf("build --allow security.insecure: exit %d, %q", r.code, r.stderr)
	}
	if r := e.run("", "run", "--rm", "--device", "/dev/kmsg", "--network", "none", "localhost/bb", "true"); r.code == 0 || !strings.Contains(r.stderr, "--device /dev/kmsg: rootless kiln can only pass devices its user can open") {
		t.Errorf("run --device /dev/kmsg: exit %d, %q", r.code, r.stderr)
	}
	// rlimits and /dev/shm need no cgroup.
	if out := e.kiln("run", "--rm", "--network", "none", "--ulimit", "nofile=100:100", "--shm-size", "1m", "localhost/bb", "sh", "-c", "ulimit -n; df -k /dev/shm | tail -1"); !strings.HasPrefix(out, "100\n") || !strings.Contains(out, " 1024 ") {
		t.Errorf("run --ulimit --shm-size: %q", out)
	}
	if out := e.kiln("run", "--rm", "--network", "none", "--device", "/dev/null:/dev/mynull", "localhost/bb", "sh", "-c", "echo x > /dev/mynull && echo ok"); out != "ok\n" {
		t.Errorf("run --device /dev/null: %q", out)
	}

	// push and pull through a registry on 127.0.0.1.
	reg := registrytest.Start(t, registrytest.Options{})
	ref := reg.Ref("rootless/app:v1")
	e.kiln("tag", "localhost/app:v1", ref)
	e.kiln("push", "-q", ref)
	e.kiln("--root", filepath.Join(e.u.Home, "store3"), "pull", "-q", ref)

	// layers, prunes, system check.
	if out := e.kiln("layers", "--ci", "localhost/app:v1"); out == "" {
		t.Error("layers printed nothing")
	}
	e.kiln("container", "prune", "-f")
	e.kiln("volume", "prune", "-a", "-f")
	e.kiln("image", "prune", "-a", "-f")
	e.kiln("builder", "prune", "-a", "-f")
	if out := e.kiln("system", "check"); !strings.Contains(out, " 0 problems") {
		t.Errorf("system check: %s", out)
	}
}

// TestRootlessSingleUID: a user without a subordinate range gets the
// single-uid mapping with a warning; images of root's files build and run,
// and a file of another owner fails with an error naming it.
func TestRootlessSingleUID(t *testing.T) {
	e := newRootlessEnv(t, false)
	// A base of root's files only.
	dir := t.TempDir()
	mk, _ := filepath.Abs("../../testdata/mkbase.sh")
	if out, err := exec.Command("sh", mk, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("mkbase: %v\n%s", err, out)
	}
	rootOnly, err := exec.Command("tar", "--owner=0", "--group=0", "--numeric-owner", "-C", filepath.Join(dir, "rootfs"), "-c", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	r := e.run(string(rootOnly), "import", "-", "localhost/root-only")
	if r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	warn := fmt.Sprintf("kiln: warning: no subordinate uid range for %s in /etc/subuid", e.u.Name)
	if !strings.HasPrefix(r.stderr, warn) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("first kiln of a user without subordinate ids: stderr %q, want one line %q...", r.stderr, warn)
	}
	if out := e.kiln("info", "--format", "{{json .UIDMap}}"); out != fmt.Sprintf("[\"0:%d:1\"]\n", e.u.UID) {
		t.Errorf("uid map: %s", out)
	}
	ctx := e.context(map[string]string{"Dockerfile": "FROM localhost/root-only\nRUN echo hi > /hi\nCOPY f /f\n", "f": "f"})
	e.kiln("build", "-q", "--network", "none", "-t", "simple", ctx)
	if out := e.kiln("run", "--rm", "--network", "none", "simple", "cat", "/hi", "/f"); out != "hi\nf" {
		t.Errorf("run: %q", out)
	}

	// Files of uid 1000: the image's import, COPY --chown, RUN chown.
	e.importBaseFails(t)
	for name, df := range map[string]string{
		"COPY --chown": "FROM localhost/root-only\nCOPY --chown=1000:1000 f /f\n",
		"RUN chown":    "FROM localhost/root-only\nRUN touch /x && chown 1000 /x\n",
	} {
		r := e.run("", "build", "--network", "none", e.context(map[string]string{"Dockerfile": df, "f": "f"}))
		last := strings.TrimSpace(r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
		if r.code == 0 || !strings.Contains(last, "Dockerfile:2") {
			t.Errorf("%s as a single-uid user: exit %d, last line %q", name, r.code, last)
		}
		if name == "COPY --chown" && !strings.Contains(last, "chown to 1000:1000: owner not mapped in this user namespace") {
			t.Errorf("%s: %q", name, last)
		}
		if name == "RUN chown" && !strings.Contains(r.stderr, "chown: /x: Invalid argument") {
			t.Errorf("%s: %q", name, r.stderr)
		}
	}
}

// importBaseFails: the tests' base, with files of uid 1000, cannot be
// imported by a single-uid user; the error names the file and the owner.
func (e *rlEnv) importBaseFails(t *testing.T) {
	importBaseInto(t, func(tarPath string) {
		data, err := os.ReadFile(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		r := e.run(string(data), "import", "-", "localhost/bb")
		if r.code == 0 || !strings.Contains(r.stderr, "home/app") || !strings.Contains(r.stderr, "chown to 1000:1000: owner not mapped") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("import of files of uid 1000: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	if out := e.kiln("images", "-q", "localhost/bb"); out != "" {
		t.Errorf("a failed import left an image: %q", out)
	}
}

// TestRootlessPauseProcess: kiln commands starting at once make one pause
// process; once it is killed the next command makes another and finds the
// store as it was.
func TestRootlessPauseProcess(t *testing.T) {
	e := newRootlessEnv(t, true)
	var wg sync.WaitGroup
	errs := make([]string, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run("", "volume", "create", fmt.Sprintf("v%d", i)); r.code != 0 {
				errs[i] = r.stderr
			}
		}()
	}
	wg.Wait()
	for i, s := range errs {
		if s != "" {
			t.Errorf("kiln %d: %s", i, s)
		}
	}
	pids := e.pausePids()
	if len(pids) != 1 {
		t.Fatalf("pause processes after concurrent first starts: %v", pids)
	}
	userns := func(pid int) string {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
		return l
	}
	first := userns(pids[0])
	killPause := func() int {
		t.Helper()
		pids := e.pausePids()
		if len(pids) != 1 {
			t.Fatalf("pause processes: %v", pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000 && len(e.pausePids()) > 0; i++ {
			time.Sleep(time.Millisecond)
		}
		return pids[0]
	}

	// Killed while a container runs: the next kiln makes a pause process
	// in the namespaces the container still holds, and reaches it.
	e.importBase("localhost/bb")
	e.kiln("run", "-d", "--network", "none", "--name", "c", "localhost/bb", "sleep", "300")
	old := killPause()
	if out := e.kiln("exec", "c", "echo", "reached"); out != "reached\n" {
		t.Errorf("exec after the pause process was killed: %q", out)
	}
	if again := e.pausePids(); len(again) != 1 || again[0] == old || userns(again[0]) != first {
		t.Errorf("pause processes after the first was killed: %v (was %d, in %s)", again, old, first)
	}
	e.kiln("rm", "-f", "c")

	// Killed with nothing running: new namespaces, the same store.
	old = killPause()
	if out := e.kiln("volume", "ls", "-q"); out != "v0\nv1\nv2\nv3\nv4\nv5\n" {
		t.Errorf("volumes after the pause process was killed: %q", out)
	}
	if again := e.pausePids(); len(again) != 1 || again[0] == old || userns(again[0]) == first {
		t.Errorf("pause processes after the second was killed: %v (was %d)", again, old)
	}

	// With no pause process the kiln the user starts re-executes itself in
	// the namespace (in the steady state it joins in its constructor, one
	// process: TestRootlessEntry); a signal to it reaches kiln there.
	killPause()
	cmd := e.u.Command("events")
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	cmd.Stdout = null // a file: Wait does not wait for whoever else holds it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inner := 0
	for i := 0; i < 2000 && inner == 0; i++ {
		time.Sleep(5 * time.Millisecond)
		inner = childOf(cmd.Process.Pid)
	}
	if inner == 0 {
		t.Fatal("kiln events: no kiln in the namespace")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	for i := 0; i < 2000; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", inner)); err != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("kiln %d in the namespace outlived the kiln the user ran, signalled", inner)
}

// childOf is a child process of pid (0: none).
func childOf(pid int) int {
	for _, p := range proc.All() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err == nil && strings.Contains(string(data), fmt.Sprintf("\nPPid:\t%d\n", pid)) {
			return p
		}
	}
	return 0
}

// TestRootlessEntry: in the steady state (the pause process lives) the kiln
// the user starts is itself in the namespace, one process; when the
// constructor cannot join (a garbage or stale pause.pid) Go's path does, and
// a runtime directory that is not the user's fails with Go's one line.
func TestRootlessEntry(t *testing.T) {
	e := newRootlessEnv(t, true)
	e.kiln("volume", "create", "vol")
	rt := filepath.Join(e.u.RuntimeDir, "kiln")
	pidFile := filepath.Join(rt, "pause.pid")
	userns := func(pid int) string {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
		return l
	}

	// One process: the pid the test started is in the pause process's
	// user namespace (a re-executing kiln stays outside, waiting).
	cmd := e.u.Command("events")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pause := e.pausePids()
	if len(pause) != 1 {
		t.Fatalf("pause processes: %v", pause)
	}
	inside := false
	for i := 0; i < 2000 && !inside; i++ {
		inside = userns(cmd.Process.Pid) == userns(pause[0])
		if !inside {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !inside {
		t.Errorf("kiln %d is not itself in the user namespace of pause process %d (child: %d)", cmd.Process.Pid, pause[0], childOf(cmd.Process.Pid))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(pidFile, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(pidFile, e.u.UID, e.u.GID)
	}
	st, _ := proc.StartTime(pause[0])
	for _, bad := range []string{"garbage\n", fmt.Sprintf("%d %d\n", pause[0], st+1), ""} {
		write(bad)
		if out := e.kiln("volume", "ls", "-q"); out != "vol\n" {
			t.Errorf("pause.pid %q: volume ls: %q", bad, out)
		}
		data, _ := os.ReadFile(pidFile)
		if string(data) == bad {
			t.Errorf("pause.pid %q: not replaced", bad)
		}
	}

	// A runtime directory (or its kiln/) of another owner, or writable by
	// others: the constructor does not enter, Go says why.
	for _, c := range []struct {
		dir  string
		mode os.FileMode
		uid  int
		want string
	}{
		{e.u.RuntimeDir, 0o700, 0, "is owned by uid 0, not by you"},
		{e.u.RuntimeDir, 0o777, e.u.UID, "is writable by others"},
		{rt, 0o700, 0, "is owned by uid 0, not by you"},
	} {
		os.Chown(c.dir, c.uid, -1)
		os.Chmod(c.dir, c.mode)
		r := e.run("", "volume", "ls", "-q")
		if r.code != 125 || !strings.Contains(r.stderr, c.dir+" "+c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s of uid %d, mode %o: exit %d, stderr %q", c.dir, c.uid, c.mode, r.code, r.stderr)
		}
		os.Chown(c.dir, e.u.UID, -1)
		os.Chmod(c.dir, 0o700)
	}
}
