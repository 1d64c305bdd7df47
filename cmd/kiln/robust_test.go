package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConcurrentBuilds runs several builds in one store at once: the lock and
// atomic writes keep every image whole.
func TestConcurrentBuilds(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	const n = 4
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		ctx := writeContext(t, map[string]string{
			"Dockerfile": fmt.Sprintf("FROM localhost/bb:latest\nCOPY shared.txt /shared.txt\nRUN echo %d > /id && cat /shared.txt >> /id\nCMD [\"cat\", \"/id\"]\n", i),
			"shared.txt": "same content in every build\n",
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run("", "build", "-q", "-t", fmt.Sprintf("c%d", i), ctx); r.code != 0 {
				errs[i] = r.stderr
			}
		}()
	}
	wg.Wait()
	for i, msg := range errs {
		if msg != "" {
			t.Errorf("build %d: %s", i, msg)
		}
	}
	for i := range n {
		// Every image is complete: its layers regenerate to their diffIDs on save.
		e.kiln("save", "-o", filepath.Join(t.TempDir(), "c.tar"), fmt.Sprintf("c%d", i))
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %d entries after successful builds", len(ents))
	}
}

// TestKilledBuild kills kiln in the middle of a RUN step: the sandbox dies
// with it, no mount is left behind, and the store still works.
func TestKilledBuild(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	// A sleep no other process on the machine runs, to find what is left.
	sleep := fmt.Sprintf("sleep 300.%d", os.Getpid()%1000)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nRUN echo before > /f\nRUN " + sleep + "\n"})
	self, _ := os.Executable()
	cmd := exec.Command(self, "--root", e.root, "build", "-t", "killed", ctx)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "RUN "+sleep) {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // let the sandbox start
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	waitKilledBuildGone(t, time.Now().Add(time.Minute), sleep, e.root, mountsUnder)
	if r := e.run("", "inspect", "killed"); r.code == 0 {
		t.Error("killed build was tagged")
	}
	// The store works: a build over the same steps succeeds.
	ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\nRUN echo before > /f\n"})
	e.kiln("build", "-q", "-t", "after", ctx2)
}

// sandboxProcesses lists processes whose command line mentions marker (a
// command only the test runs, or the test's store root).
// waitKilledBuildGone waits, until deadline, for a killed build to leave no
// process (its sandboxes: named by marker, or under root) and no mount
// (mounts(t, root)) behind.
func waitKilledBuildGone(t *testing.T, deadline time.Time, marker, root string, mounts func(*testing.T, string) []string) {
	t.Helper()
	for {
		leftover := append(sandboxProcesses(t, marker), sandboxProcesses(t, root)...)
		m := mounts(t, root)
		if len(leftover) == 0 && len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL: processes %v, mounts %v", leftover, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sandboxProcesses(t *testing.T, marker string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(c, marker) {
			out = append(out, e.Name()+": "+c)
		}
	}
	return out
}

// mountinfoLines are the lines of this process's (the host's) mountinfo.
func mountinfoLines(t *testing.T) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

// mountsUnder lists the host's mounts below dir.
func mountsUnder(t *testing.T, dir string) []string {
	var out []string
	for _, line := range mountinfoLines(t) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}
