package main

import (
	"strings"
	"testing"
)

func TestContainerInit(t *testing.T) {
	e := newContainerEnv(t)
	// The init is PID 1, the command its child; exit codes pass through.
	out := e.kiln("run", "--rm", "--init", "bb", "sh", "-c", `ps -o pid,comm | grep '^ *1 '; echo $$`)
	if f := strings.Fields(out); len(f) != 3 || f[1] != "kiln-init" || f[2] == "1" {
		t.Errorf("--init: %q", out)
	}
	if r := e.run("", "run", "--rm", "--init", "bb", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("--init exit code %d", r.code)
	}
	if r := e.run("", "run", "--rm", "--init", "bb", "no-such-command"); r.code != 127 {
		t.Errorf("--init with a missing command: %+v", r)
	}
	// Orphans are reaped: no zombie is left behind.
	out = e.kiln("run", "--rm", "--init", "bb", "sh", "-c", `sh -c 'sleep 0.1 & exit 0'; sleep 0.5; ps -o stat | grep -c Z || true`)
	if out != "0\n" {
		t.Errorf("zombies under --init: %q", out)
	}
	// The stop signal reaches the command (not PID 1 any more, so its
	// default action applies): stop does not wait for the timeout.
	e.kiln("run", "-d", "--init", "--name", "sleeper", "bb", "sleep", "1000")
	// 143, SIGTERM's code (not SIGKILL's 137): the signal ended it, stop
	// did not wait for the timeout.
	e.kiln("stop", "-t", "5", "sleeper")
	if got := e.inspectF("{{.State.ExitCode}} {{.HostConfig.Init}}", "sleeper"); got != "143 true" {
		t.Errorf("after stop: %s", got)
	}
	// With a terminal, Ctrl-C reaches the command, in the foreground.
	p := e.startPty(24, 80, "run", "-it", "--rm", "--init", "bb", "sh", "-c", "echo ready; exec sleep 1000")
	p.expect("ready")
	p.send("\x03")
	if code := p.wait(); code != 130 {
		t.Errorf("Ctrl-C under --init: exit %d, want 130", code)
	}
}

func TestContainerDevices(t *testing.T) {
	e := newContainerEnv(t)
	out := e.kiln("run", "--rm", "--device", "/dev/null:/dev/mynull", "--device", "/dev/zero", "bb", "sh", "-c",
		"ls -l /dev/mynull | cut -c1-10; echo hi > /dev/mynull && echo written; head -c 3 /dev/zero | wc -c")
	if out != "crw-rw-rw-\nwritten\n3\n" {
		t.Errorf("--device: %q", out)
	}
	if got := e.inspectF("{{range .HostConfig.Devices}}{{.PathOnHost}}:{{.PathInContainer}}:{{.CgroupPermissions}} {{end}}",
		strings.TrimSpace(e.kiln("create", "--device", "/dev/null:/dev/n:r", "bb", "true"))); got != "/dev/null:/dev/n:r" {
		t.Errorf("HostConfig.Devices: %q", got)
	}
	for _, bad := range []string{"/dev/nope", "/etc/passwd", "relative", "/dev/null:/dev/n:rx"} {
		if r := e.run("", "run", "--rm", "--device", bad, "bb", "true"); r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("--device %s: %+v", bad, r)
		}
	}
	// Devices outside docker's default list are out of reach, even made
	// with mknod, unless given with --device (cgroup v1's devices controller).
	if exists("/sys/fs/cgroup/devices/devices.list") {
		script := "mknod /tmp/lc c 10 237 && true </tmp/lc 2>/dev/null && echo readable || echo denied"
		if out := e.kiln("run", "--rm", "bb", "sh", "-c", script); out != "denied\n" {
			t.Errorf("a device outside the allowed list: %q", out)
		}
		if out := e.kiln("run", "--rm", "--device", "/dev/loop-control", "bb", "sh", "-c", script); out != "readable\n" {
			t.Errorf("a device given with --device: %q", out)
		}
		if out := e.kiln("run", "--rm", "--privileged", "bb", "sh", "-c", script); out != "readable\n" {
			t.Errorf("a device in a privileged container: %q", out)
		}
	}
}
