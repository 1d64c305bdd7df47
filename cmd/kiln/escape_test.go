package main

// Regression tests for the known ways out of a container or a RUN step:
// runc's CVE-2019-5736 (/proc/PID/exe of a runtime process), runc's
// CVE-2024-21626 (a leaked descriptor, a working directory in
// /proc/self/fd), BuildKit's CVE-2024-23652 (mount stub cleanup through a
// symlink, in runner's tests) and buildah's CVE-2024-1753 (a bind mount
// source that is a symlink).

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostCanary is a directory of the host with a file the sandbox must never
// see or change.
type hostCanary struct {
	dir, name, content string
	listed             string // a file no script names: seen only in a listing
}

func newHostCanary(t *testing.T) hostCanary {
	t.Helper()
	c := hostCanary{dir: t.TempDir(), name: "host-canary-7f3a", content: "host secret 51c9\n", listed: "listed-only-9d2e"}
	if err := os.WriteFile(filepath.Join(c.dir, c.name), []byte(c.content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(c.dir, c.listed), 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// check fails the test if out shows the canary or the canary changed.
func (c hostCanary) check(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, c.listed) || strings.Contains(out, strings.TrimSpace(c.content)) {
		t.Errorf("%s sees the host directory:\n%s", what, out)
	}
	data, err := os.ReadFile(filepath.Join(c.dir, c.name))
	if err != nil || string(data) != c.content {
		t.Errorf("%s: the host canary changed: %q, %v", what, data, err)
	}
	entries, _ := os.ReadDir(c.dir)
	if len(entries) != 2 {
		t.Errorf("%s: the host directory now holds %d entries", what, len(entries))
	}
}

// runKiln runs the kiln binary bin (the test binary, or a copy of it) with
// args; extra become its descriptors 3 and on, without close-on-exec, as a
// careless parent (a CI runner) would leave them.
func (e *env) runKiln(bin string, extra []*os.File, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.ExtraFiles = extra
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// leakedDirs opens the canary directory as descriptors 3..10 of a child.
func leakedDirs(t *testing.T, c hostCanary) []*os.File {
	t.Helper()
	var files []*os.File
	for range 8 {
		f, err := os.Open(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// CVE-2024-21626: descriptors kiln inherits never reach a container, a RUN
// or an exec, and a working directory through /proc/self/fd/N is refused
// or empty of the host.
func TestEscapeLeakedDescriptors(t *testing.T) {
	e := newContainerEnv(t)
	c := newHostCanary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	leak := leakedDirs(t, c)
	look := "ls -la /proc/self/fd/ /proc/self/fd/*/ 2>&1; cat /proc/self/fd/*/" + c.name + " 2>&1; true"

	r := e.runKiln(self, leak, "run", "--rm", "bb", "sh", "-c", look)
	c.check(t, "run", r.stdout+r.stderr)
	r = e.runKiln(self, leak, "run", "--rm", "--init", "bb", "sh", "-c", look+"; ls -la /proc/1/fd/ /proc/1/fd/*/ 2>&1")
	c.check(t, "run --init", r.stdout+r.stderr)
	for n := 3; n <= 10; n++ {
		r := e.runKiln(self, leak, "run", "--rm", "-w", fmt.Sprintf("/proc/self/fd/%d", n), "bb",
			"sh", "-c", "pwd; ls -la . .. ../..; cat "+c.name)
		c.check(t, fmt.Sprintf("run -w /proc/self/fd/%d", n), r.stdout+r.stderr)
	}

	startBox(e, "box")
	r = e.runKiln(self, leak, "exec", "box", "sh", "-c", look)
	c.check(t, "exec", r.stdout+r.stderr)
	for n := 3; n <= 10; n++ {
		for _, dir := range []string{fmt.Sprintf("/proc/self/fd/%d", n), fmt.Sprintf("/proc/1/fd/%d", n)} {
			r := e.runKiln(self, leak, "exec", "-w", dir, "box", "sh", "-c", "pwd; ls -la . ..; cat "+c.name)
			c.check(t, "exec -w "+dir, r.stdout+r.stderr)
		}
	}

	var df strings.Builder
	df.WriteString("FROM localhost/bb:latest\nRUN " + look + "\n")
	for n := 3; n <= 10; n++ {
		fmt.Fprintf(&df, "WORKDIR /proc/self/fd/%d\nRUN pwd; ls -la . .. ../..; cat %s; true\n", n, c.name)
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": df.String()})
	e.importBase("localhost/bb:latest")
	r = e.runKiln(self, leak, "build", "--no-cache", ctx)
	c.check(t, "build", r.stdout+r.stderr)
	// A RUN whose working directory goes through a magic link fails clearly.
	if r.code == 0 || !strings.Contains(r.stderr, "/proc/self/fd/") {
		t.Errorf("build with WORKDIR /proc/self/fd/N: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// fileState is what must not change of the host's kiln binary.
func fileState(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%x mode %o owner %d:%d mtime %d", h.Sum(nil), st.Mode, st.Uid, st.Gid, st.Mtim.Nano())
}

// copyBinary copies the test binary (which is kiln) to a directory of its
// own: the "host's kiln binary" the container attacks, so that a
// vulnerable build damages only a copy.
func copyBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(t.TempDir(), "kiln")
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// attackExe is what a root process of a container tries on the
// executable of PID: write it, reopen a read descriptor of it for
// writing (/proc/self/fd, the O_PATH trick), change its mode, owner and
// times. Each success prints a line with HIT.
func attackExe(pid string) string {
	x := "/proc/" + pid + "/exe"
	return "(echo >> " + x + ") 2>/dev/null && echo HIT write " + pid + "; " +
		"(exec 7< " + x + " && echo >> /proc/self/fd/7) 2>/dev/null && echo HIT reopen " + pid + "; " +
		"chmod 4777 " + x + " 2>/dev/null && echo HIT chmod " + pid + "; " +
		"chown 1:1 " + x + " 2>/dev/null && echo HIT chown " + pid + "; " +
		"touch " + x + " 2>/dev/null && echo HIT touch " + pid + "; true; "
}

// CVE-2019-5736: the tiny init of --init is kiln and stays PID 1; a root
// process of the container that may ptrace it (SYS_PTRACE, as many
// debugging setups add) must still get no way to change the host's kiln
// binary through /proc/1/exe. The same for what `kiln exec` starts in the
// container: it is kiln until it execs the command.
func TestEscapeProcExe(t *testing.T) {
	e := newContainerEnv(t)
	bin := copyBinary(t)
	before := fileState(t, bin)

	// The test itself checks the link can be reached: else it tests nothing.
	script := "test -e /proc/1/exe || echo UNREACHABLE; " + attackExe("1")
	r := e.runKiln(bin, nil, "run", "--rm", "--init", "--cap-add", "SYS_PTRACE", "bb", "sh", "-c", script)
	if r.code != 0 || strings.Contains(r.stdout, "UNREACHABLE") || strings.Contains(r.stdout, "HIT") {
		t.Errorf("run --init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := fileState(t, bin); after != before {
		t.Fatalf("the host's kiln binary changed: %s, was %s", after, before)
	}

	// A watcher in the container attacks every process it sees whose
	// executable is not the container's busybox, while kiln exec starts
	// processes in it. The window is short, so it cannot prove much alone:
	// the kiln processes a container can see are then checked from the
	// host, where they can be found at leisure.
	if r := e.runKiln(bin, nil, "run", "-d", "--name", "box", "--init", "--cap-add", "SYS_PTRACE", "bb", "sh", "-c",
		`touch /ready; while :; do for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$(readlink $d/exe)" = /bin/busybox ] && continue; `+
			attackExe("$p")+`done >> /hits 2>/dev/null; done`); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	waitFor(t, func() bool { return e.runKiln(bin, nil, "exec", "box", "test", "-f", "/ready").code == 0 })
	for range 20 {
		e.runKiln(bin, nil, "exec", "box", "true")
	}
	if hits := e.runKiln(bin, nil, "exec", "box", "cat", "/hits").stdout; strings.Contains(hits, "HIT") {
		t.Errorf("the watcher changed a kiln process's executable:\n%s", hits)
	}
	if after := fileState(t, bin); after != before {
		t.Fatalf("the host's kiln binary changed: %s, was %s", after, before)
	}

	// From the host: the monitors, the exec monitor (what kiln exec forks
	// into the container is a copy of it until it execs) and the tiny init
	// run from something no one can write, chmod or touch.
	cmd := exec.Command(bin, "--root", e.root, "exec", "box", "sleep", "1000")
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	var execErr bytes.Buffer
	cmd.Stderr = &execErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var pids []int
	for try := 0; len(pids) < 3; try++ { // monitor, tiny init, exec monitor
		if try == 200 {
			t.Fatalf("kiln processes of the store: %v; exec: %s", pids, execErr.String())
		}
		time.Sleep(50 * time.Millisecond)
		pids = kilnProcesses(e.root)
	}
	for _, pid := range pids {
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		if f, err := os.OpenFile(exe, os.O_WRONLY, 0); err == nil {
			f.Close()
			t.Errorf("%s opens for writing", exe)
		} else if errors.Is(err, unix.ETXTBSY) {
			t.Errorf("%s: only ETXTBSY stops a write, until the binary stops running: %v", exe, err)
		}
		if err := os.Chmod(exe, 0o4777); err == nil {
			t.Errorf("chmod %s succeeded", exe)
		}
		if err := os.Chtimes(exe, time.Unix(0, 0), time.Unix(0, 0)); err == nil {
			t.Errorf("touch %s succeeded", exe)
		}
	}
	e.run("", "rm", "-f", "box")
	if after := fileState(t, bin); after != before {
		t.Fatalf("the host's kiln binary changed: %s, was %s", after, before)
	}
}

// kilnProcesses are the PIDs of this store's monitors and exec monitors and
// of the tiny inits (kiln-init) its monitors started.
func kilnProcesses(root string) []int {
	var pids []int
	monitors := map[string]bool{}
	inits := map[int]string{} // pid → ppid
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		var pid int
		fmt.Sscanf(filepath.Base(p), "%d", &pid)
		cmdline, _ := os.ReadFile(p + "/cmdline")
		comm, _ := os.ReadFile(p + "/comm")
		switch {
		case strings.HasPrefix(string(cmdline), "kiln-monitor\x00"+root+"\x00"),
			strings.HasPrefix(string(cmdline), "kiln-exec\x00"+root+"\x00"):
			pids = append(pids, pid)
			monitors[filepath.Base(p)] = true
		case strings.TrimSpace(string(comm)) == "kiln-init":
			stat, _ := os.ReadFile(p + "/stat")
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					inits[pid] = f[1]
				}
			}
		}
	}
	for pid, ppid := range inits {
		if monitors[ppid] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// 13 lines of ARG X=$X$X$X$X$X$X$X$X$X$X once grew past 3 GB: the build
// fails at once, naming the line where the value got too big.
func TestEscapeExpansionBomb(t *testing.T) {
	e := newEnv(t)
	df := "FROM scratch\nARG X=abcdefghij\n" + strings.Repeat("ARG X=$X$X$X$X$X$X$X$X$X$X\n", 13) + "LABEL x=$X\n"
	r := e.run("", "build", writeContext(t, map[string]string{"Dockerfile": df}))
	// 10 bytes, then 100 B, 1 kB, ... 1 MB on line 7: line 8 asks for 10 MB.
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile:8: ARG X: variable expansion exceeds 1048576 bytes") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// buildah's CVE-2024-1753: the source of RUN --mount=type=bind is resolved
// inside what it names (the context, a stage, an image): a symlink to /,
// to a host directory or up out of it never reaches the host's files.
func TestEscapeBindMountSymlinkSource(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	c := newHostCanary(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	for name, target := range map[string]string{"root": "/", "host": c.dir, "up": "../../../../../../../../.."} {
		if err := os.Symlink(target, filepath.Join(ctx, name)); err != nil {
			t.Fatal(err)
		}
	}
	look := func(dir string) string {
		return "ls -la " + dir + "/ " + dir + c.dir + "/ 2>&1; cat " + dir + c.dir + "/" + c.name + " " + dir + "/" + c.name + " 2>&1; true"
	}
	var df strings.Builder
	df.WriteString("FROM localhost/bb:latest AS evil\nRUN ln -s / /root-link && ln -s " + c.dir + " /host-link && ln -s ../../../.. /up-link\n")
	df.WriteString("FROM localhost/bb:latest\n")
	for _, src := range []string{"root", "host", "up", "root" + c.dir, "up" + c.dir} {
		fmt.Fprintf(&df, "RUN --mount=type=bind,source=%s,target=/x %s\n", src, look("/x"))
	}
	for _, src := range []string{"root-link", "host-link", "up-link", "root-link" + c.dir, "up-link" + c.dir} {
		for _, from := range []string{"evil", "localhost/evil:latest"} {
			fmt.Fprintf(&df, "RUN --mount=type=bind,from=%s,source=%s,target=/x %s\n", from, src, look("/x"))
		}
	}
	// The image the stage makes, for from=IMAGE.
	e.kiln("build", "-q", "-t", "localhost/evil:latest", "--target", "evil",
		writeContext(t, map[string]string{"Dockerfile": df.String()}))
	for _, line := range strings.Split(strings.TrimSpace(df.String()), "\n")[3:] {
		// One RUN per build: a source that is not found fails the build,
		// which is a fine answer too, but must not hide the others.
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(strings.Join(strings.Split(df.String(), "\n")[:3], "\n")+"\n"+line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run("", "build", "--no-cache", ctx)
		c.check(t, line, r.stdout+r.stderr)
	}
}
