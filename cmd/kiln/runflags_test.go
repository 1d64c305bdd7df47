package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// One container shows every limit and kernel setting asked for: ulimits,
// /dev/shm's size, namespaced sysctls, tmpfs mounts of the size and mode
// asked for (and full at that size), its own cgroups under /sys/fs/cgroup,
// read-only; --privileged gets them read-write.
func TestRunLimitsTmpfsSysctlsCgroupfs(t *testing.T) {
	e := newContainerEnv(t)
	shares, pids := "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/pids/pids.max"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		shares, pids = "/sys/fs/cgroup/cpu.weight", "/sys/fs/cgroup/pids.max"
	}
	out := e.kiln("run", "--rm", "--ulimit", "nofile=123:456", "--ulimit", "nproc=77", "--shm-size", "5m",
		"--sysctl", "kernel.msgmax=4242", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
		"--tmpfs", "/t:size=2m,mode=1770,exec", "--mount", "type=tmpfs,dst=/u,tmpfs-size=1m,tmpfs-mode=700",
		"--cpu-shares", "512", "--pids-limit", "50", "bb", "sh", "-c",
		`echo nofile $(ulimit -n) $(ulimit -Hn) nproc $(ulimit -u); `+
			`df -k /dev/shm /t /u | tail -n +2 | awk '{print $6, $2}'; stat -c '%a %n' /t /u; `+
			`cat /proc/sys/kernel/msgmax /proc/sys/net/ipv4/ip_unprivileged_port_start; `+
			`grep ' /t ' /proc/mounts | grep -q noexec || echo t-exec; `+
			`dd if=/dev/zero of=/u/big bs=1024 count=2048 2>/dev/null || echo u-full; `+
			`echo cg $(cat `+shares+` `+pids+`); (echo 50 > `+pids+`) 2>/dev/null || echo cgroupfs-ro`)
	want := "nofile 123 456 nproc 77\n/dev/shm 5120\n/t 2048\n/u 1024\n1770 /t\n700 /u\n4242\n80\nt-exec\nu-full\n"
	cg := "cg 512 50\n"
	if strings.HasSuffix(shares, "weight") {
		cg = "cg 20 50\n" // 512 shares as a v2 weight
	}
	if want += cg + "cgroupfs-ro\n"; out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if out := e.kiln("run", "--rm", "--privileged", "--pids-limit", "50", "bb", "sh", "-c",
		`echo 60 > `+pids+` && cat `+pids); out != "60\n" {
		t.Errorf("--privileged: the cgroupfs is not writable: %q", out)
	}

	// What cannot be honoured is refused in one line, before anything is
	// created (the parsers' tables in runner/container test every option).
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--sysctl", "vm.swappiness=1"}, `sysctl "vm.swappiness": not a namespaced sysctl`},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, "host's network namespace"},
		{[]string{"--tmpfs", "/x:foo=bar"}, `unsupported option "foo=bar"`},
		{[]string{"--mount", "type=bind,src=/tmp,dst=/x,bind-propagation=rshared"}, "bind-propagation=rshared is not supported"},
		{[]string{"--mount", "type=volume,dst=/x,volume-driver=nfs"}, `option "volume-driver" is not supported`},
	} {
		r := e.run("", append(append([]string{"run", "--rm", "--name", "refused"}, tc.args...), "bb", "true")...)
		if r.code != 125 || !strings.Contains(r.stderr, tc.msg) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 125 and one line with %q", tc.args, r.code, r.stderr, tc.msg)
		}
	}
	if r := e.run("", "inspect", "refused"); r.code == 0 {
		t.Errorf("a refused run created a container")
	}
}

// --cidfile, --label-file and -a, as docker's.
func TestRunCidfileLabelFileAttach(t *testing.T) {
	e := newContainerEnv(t)
	dir := t.TempDir()
	cid, labels := filepath.Join(dir, "cid"), filepath.Join(dir, "labels")
	if err := os.WriteFile(labels, []byte("# team\nteam=kiln\n\ntier=web\nempty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.kiln("run", "--name", "c1", "--cidfile", cid, "--label-file", labels, "-l", "tier=db", "bb", "true")
	data, err := os.ReadFile(cid)
	if err != nil || string(data) != e.inspectF("{{.Id}}", "c1") {
		t.Errorf("cidfile %q (%v), container %s", data, err, e.inspectF("{{.Id}}", "c1"))
	}
	if got := e.inspectF(`{{index .Config.Labels "team"}} {{index .Config.Labels "tier"}} [{{index .Config.Labels "empty"}}]`, "c1"); got != "kiln db []" {
		t.Errorf("labels: %s", got)
	}
	if r := e.run("", "run", "--name", "c2", "--cidfile", cid, "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "container ID file found") {
		t.Errorf("an existing cidfile: %+v", r)
	}
	script := "echo to-out; echo to-err >&2"
	if r := e.run("", "run", "--rm", "-a", "stdout", "bb", "sh", "-c", script); r.code != 0 || r.stdout != "to-out\n" || r.stderr != "" {
		t.Errorf("-a stdout: %+v", r)
	}
	if r := e.run("", "run", "--rm", "-a", "STDERR", "bb", "sh", "-c", script); r.code != 0 || r.stdout != "" || r.stderr != "to-err\n" {
		t.Errorf("-a STDERR: %+v", r)
	}
	if r := e.run("in\n", "run", "--rm", "-a", "stdin", "-a", "stdout", "-i", "bb", "cat"); r.stdout != "in\n" {
		t.Errorf("-a stdin -a stdout -i: %+v", r)
	}
	if r := e.run("", "run", "--rm", "-a", "stdbad", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "valid streams are STDIN, STDOUT and STDERR") {
		t.Errorf("-a stdbad: %+v", r)
	}
	if r := e.run("", "run", "-d", "-a", "stdout", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "conflicting options") {
		t.Errorf("-a with -d: %+v", r)
	}
}

// bind-propagation=rslave: a mount made on the host under the bind source
// after the container started shows in it; the default (rprivate) does not.
func TestRunBindPropagation(t *testing.T) {
	e := newContainerEnv(t)
	src := t.TempDir()
	if err := unix.Mount("tmpfs", src, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	startBox(e, "slave", "--mount", "type=bind,src="+src+",dst=/s,bind-propagation=rslave")
	startBox(e, "private", "-v", src+":/s")
	if got := e.inspectF("{{range .Mounts}}{{.Propagation}}{{end}}", "slave"); got != "rslave" {
		t.Errorf("inspect shows propagation %q", got)
	}
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("propagated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.kiln("exec", "slave", "cat", "/s/sub/f"); out != "propagated" {
		t.Errorf("rslave: %q", out)
	}
	if r := e.run("", "exec", "private", "cat", "/s/sub/f"); r.code == 0 {
		t.Errorf("rprivate: the host's new mount reached the container: %q", r.stdout)
	}
	e.kiln("rm", "-f", "slave", "private")
}

// The terminal of run -t is the only one of the container's own devpts.
func TestContainerTTYSameDevpts(t *testing.T) {
	e := newContainerEnv(t)
	p := e.startPty(24, 80, "run", "-it", "--name", "pts", "bb", "sh")
	p.send("echo rea''dy\n")
	p.expect("ready")
	if got := e.kiln("exec", "pts", "sh", "-c", "ls /dev/pts | sort | tr '\\n' ' '"); got != "0 ptmx " {
		t.Errorf("/dev/pts of the container: %q", got)
	}
	p.send("exit\n")
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
}
