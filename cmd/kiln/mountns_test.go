package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/runner"
)

// countStart appends a line to $KILN_TEST_STARTS, when set, at every start
// of the test binary as kiln (or as one of its re-executions).
func countStart() {
	name := os.Getenv("KILN_TEST_STARTS")
	if name == "" {
		return
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "count start:", err)
		os.Exit(3)
	}
	fmt.Fprintf(f, "%d %q\n", os.Getpid(), os.Args)
	f.Close()
}

// starts runs kiln with args and returns how many processes ran the kiln
// binary for it.
func (e *env) starts(args ...string) []string {
	e.t.Helper()
	name := filepath.Join(e.t.TempDir(), "starts")
	e.t.Setenv("KILN_TEST_STARTS", name)
	e.kiln(args...)
	data, err := os.ReadFile(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestBuildStartsOnce: with detached mounts, kiln build mounts nothing in a
// mount table and runs as one process — no re-execution into a private
// mount namespace — for a cached build and for COPY and WORKDIR steps.
func TestBuildStartsOnce(t *testing.T) {
	if !runner.DetachedMountsSupported() {
		t.Skip("kernel without detached overlay mounts: kiln build re-executes into a mount namespace")
	}
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nWORKDIR /app\nCOPY f /app/\nRUN cat /app/f > /app/g\n",
		"f":          "content\n",
	})
	noRun := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nWORKDIR /srv\nCOPY f /srv/\n",
		"f":          "other\n",
	})
	if s := e.starts("build", "-q", "-t", "cold", noRun); len(s) != 1 {
		t.Errorf("a cold build of COPY and WORKDIR started kiln %d times:\n%s", len(s), strings.Join(s, "\n"))
	}
	if out := e.kiln("run", "--rm", "cold", "cat", "/srv/f"); out != "other\n" {
		t.Errorf("the COPY made /srv/f %q", out)
	}
	e.kiln("build", "-q", "-t", "warm", ctx)
	if s := e.starts("build", "-t", "warm", ctx); len(s) != 1 {
		t.Errorf("a cached build started kiln %d times:\n%s", len(s), strings.Join(s, "\n"))
	}
}

// TestBuildMountsInvisible: the overlays, the from= tree and the secrets
// tmpfs of a running build never appear in the host's mount table, and
// killing the build leaves no mount and no process behind.
func TestBuildMountsInvisible(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	sleep := fmt.Sprintf("sleep 301.%d", os.Getpid()%1000)
	secret := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secret, []byte("shh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM localhost/bb:latest\nCOPY f /f\n" +
			"RUN --mount=from=localhost/bb:latest,target=/m --mount=type=secret,id=s,required=true " +
			"sh -c 'test -x /m/bin/busybox && cat /run/secrets/s > /ready && " + sleep + "'\n",
		"f": "x\n",
	})
	self, _ := os.Executable()
	cmd := exec.Command(self, "--root", e.root, "build", "--progress=plain", "--secret", "id=s,src="+secret, "-t", "killed", ctx)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "RUN --mount") {
			break
		}
	}
	// The sandbox is running once its command wrote /ready into the
	// RUN's upper directory, under the store.
	deadline := time.Now().Add(2 * time.Minute)
	for !fileUnder(e.root, "ready") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the RUN never started:\n%s", strings.Join(seen, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := hostMountsOf(t, e.root); len(m) != 0 {
		t.Errorf("the host's mount table shows the running build's mounts:\n%s", strings.Join(m, "\n"))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitKilledBuildGone(t, deadline, sleep, e.root, hostMountsOf)
}

// hostMountsOf lists the lines of this process's (the host's) mountinfo
// that name a path under root: as mount point, source or overlay option.
func hostMountsOf(t *testing.T, root string) []string {
	var out []string
	for _, line := range mountinfoLines(t) {
		if strings.Contains(line, root) {
			out = append(out, line)
		}
	}
	return out
}

// fileUnder reports whether a file named name exists anywhere below dir.
func fileUnder(dir, name string) bool {
	found := false
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
