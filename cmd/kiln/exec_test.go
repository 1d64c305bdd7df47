package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startBox runs a detached container that writes /marker and sleeps.
func startBox(e *env, name string, args ...string) (id string, pid int) {
	e.t.Helper()
	run := append(append([]string{"run", "-d", "--name", name, "--hostname", name}, args...),
		"bb", "sh", "-c", "echo hi > /marker; exec sleep 1000")
	id = strings.TrimSpace(e.kiln(run...))
	waitFor(e.t, func() bool { return e.run("", "exec", name, "test", "-f", "/marker").code == 0 })
	pid, _ = strconv.Atoi(e.inspectF("{{.State.Pid}}", name))
	return id, pid
}

func TestContainerExec(t *testing.T) {
	e := newContainerEnv(t)
	id, pid := startBox(e, "box")

	// The container's mounts, hostname, PID namespace (its command is PID 1)
	// and environment.
	out := e.kiln("exec", "box", "sh", "-c", `cat /marker; hostname; echo $HOSTNAME; test $$ -ne 1 && echo not-pid-1; cat /proc/1/cmdline | tr '\0' ' '; echo`)
	if out != "hi\nbox\nbox\nnot-pid-1\nsleep 1000 \n" {
		t.Errorf("exec: %q", out)
	}
	if out := e.kiln("exec", "box", "ps", "-o", "pid,args"); !strings.Contains(out, "    1 sleep 1000\n") || strings.Count(out, "\n") != 3 {
		t.Errorf("ps in the container:\n%s", out)
	}
	// Its cgroups, in its cgroup namespace: every hierarchy says "/".
	for _, l := range strings.Split(strings.TrimSpace(e.kiln("exec", "box", "cat", "/proc/self/cgroup")), "\n") {
		if strings.Contains(l, ":memory:") || strings.Contains(l, ":pids:") || strings.HasPrefix(l, "0::") {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("exec is not in the container's cgroup: %s", l)
			}
		}
	}
	// Exit codes, user, working directory, environment, stdin.
	if r := e.run("", "exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"); r.code != 5 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exit 5: %+v", r)
	}
	if out := e.kiln("exec", "-u", "app", "-w", "/tmp", "-e", "A=1", "box", "sh", "-c", "echo $(id -u) $(pwd) $A $HOME"); out != "1000 /tmp 1 /home/app\n" {
		t.Errorf("exec -u -w -e: %q", out)
	}
	if r := e.run("piped\n", "exec", "-i", "box", "cat"); r.stdout != "piped\n" || r.code != 0 {
		t.Errorf("exec -i: %+v", r)
	}
	if out := e.kiln("exec", "box", "cat"); out != "" {
		t.Errorf("exec without -i reads %q", out)
	}
	// The container's capabilities and no_new_privs; --privileged lifts them.
	status := func(args ...string) string {
		out := e.kiln(append(append([]string{"exec"}, args...), "box", "grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status")...)
		return strings.Join(strings.Fields(out), " ")
	}
	if got := status(); got != "CapEff: 00000000a80425fb NoNewPrivs: 0" {
		t.Errorf("exec capabilities: %s", got)
	}
	if got := status("--privileged"); strings.Contains(got, "a80425fb") || !strings.HasSuffix(got, "NoNewPrivs: 0") {
		t.Errorf("exec --privileged capabilities: %s", got)
	}
	// Errors: one line each, docker's exit codes.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"exec", "box", "no-such-command"}, 127, "executable file not found"},
		{[]string{"exec", "box", "/etc/passwd"}, 126, "permission denied"},
		{[]string{"exec", "-u", "nouser", "box", "true"}, 126, "no matching entries in passwd file"},
		{[]string{"exec", "nosuchcontainer", "true"}, 1, "no such container"},
	} {
		r := e.run("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: %+v", tc.args, r)
		}
	}
	// exec -d returns at once; its process runs on in the container. The
	// process waits for /go, made only once exec -d has returned: an exec
	// -d that waited for its process would never return.
	detached := make(chan result, 1)
	go func() {
		detached <- e.run("", "exec", "-d", "box", "sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; echo done > /d")
	}()
	select {
	case r := <-detached:
		if r.code != 0 {
			t.Fatalf("exec -d: exit %d: %s", r.code, r.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("exec -d waited for the process")
	}
	e.kiln("exec", "box", "touch", "/go")
	waitFor(t, func() bool { return e.run("", "exec", "box", "cat", "/d").stdout == "done\n" })

	// util-linux's nsenter joins the container as on docker.
	if _, err := exec.LookPath("nsenter"); err == nil {
		out, err := exec.Command("nsenter", "--target", strconv.Itoa(pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--",
			"/bin/sh", "-c", "hostname; cat /marker; ls /sys/class/net").CombinedOutput()
		if err != nil || string(out) != "box\nhi\neth0\nlo\n" { // the default bridge gives eth0
			t.Errorf("nsenter: %q, %v", out, err)
		}
	}
	// Stopping the container ends what runs in it, exec monitors included.
	e.kiln("exec", "-d", "box", "sleep", "1000")
	e.kiln("stop", "-t", "0", "box")
	if r := e.run("", "exec", "box", "true"); r.code != 1 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("exec in a stopped container: %+v", r)
	}
	e.assertNoContainers([]string{id})
}

// An exec survives the death of the kiln that started it.
func TestContainerExecSurvivesItsClient(t *testing.T) {
	e := newContainerEnv(t)
	startBox(e, "box")
	self, _ := os.Executable()
	cmd := exec.Command(self, "--root", e.root, "exec", "box", "sh", "-c", "echo up; sleep 0.5; echo later > /later")
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := out.Read(buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("exec output %q, %v", buf, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, func() bool { return e.run("", "exec", "box", "cat", "/later").stdout == "later\n" })
	id := e.inspectF("{{.Id}}", "box")
	if _, err := os.Stat(filepath.Join(e.root, "containers", id, "attach.sock")); err != nil {
		t.Errorf("the monitor's attach socket: %v", err)
	}
}

func TestContainerTopAndDiff(t *testing.T) {
	e := newContainerEnv(t)
	_, pid := startBox(e, "box")
	e.kiln("exec", "-d", "box", "sleep", "999")
	waitFor(t, func() bool { return strings.Contains(e.kiln("top", "box"), "sleep 999") })
	out := e.kiln("top", "box")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" ||
		!strings.Contains(out, " "+strconv.Itoa(pid)+" ") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("top:\n%s", out)
	}
	if out := e.kiln("top", "box", "-o", "pid,comm"); !strings.HasPrefix(out, "PID") || strings.Count(out, "sleep") != 2 {
		t.Errorf("top -o pid,comm:\n%s", out)
	}
	// diff: what the container changed, not its mount points.
	e.kiln("exec", "box", "sh", "-c", "rm /bin/vi; echo x >> /etc/passwd; mkdir -p /new/dir; touch /new/dir/f; mkdir /tmp/t")
	want := "D /bin/vi\nC /etc\nC /etc/passwd\nA /marker\nA /new\nA /new/dir\nA /new/dir/f\nC /tmp\nA /tmp/t\n"
	if out := e.kiln("diff", "box"); out != "C /bin\n"+want {
		t.Errorf("diff:\n%s", out)
	}
	e.kiln("stop", "-t", "0", "box")
	if out := e.kiln("diff", "box"); out != "C /bin\n"+want {
		t.Errorf("diff after stop:\n%s", out)
	}
	if r := e.run("", "top", "box"); r.code == 0 {
		t.Errorf("top of a stopped container succeeded")
	}
}
