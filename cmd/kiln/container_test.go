package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/network"
)

// newContainerEnv is an env with the busybox base imported as "bb" that,
// after the test, removes every container it made and checks that nothing
// is left: no monitor or container process, no cgroup.
func newContainerEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.importBase("bb")
	t.Cleanup(func() {
		ids := strings.Fields(e.run("", "ps", "-aq", "--no-trunc").stdout)
		if len(ids) > 0 {
			e.run("", append([]string{"rm", "-f", "-v"}, ids...)...)
		}
		e.assertNoContainers(ids)
		// The default bridge outlives its last container by the teardown
		// delay: network prune takes it down at once.
		e.run("", "network", "prune", "-f")
		if br := network.DefaultBridgeName(e.root); exists("/sys/class/net/" + br) {
			t.Errorf("bridge %s left behind", br)
		}
	})
	return e
}

// processesOf lists the processes (as /proc/PID/cmdline) whose command
// line starts with one of prefixes (arguments NUL-separated).
func processesOf(prefixes ...string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, prefix := range prefixes {
			if strings.HasPrefix(string(data), prefix) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// assertNoContainers fails if a process of this store (a monitor or an exec
// monitor) or a cgroup of ids remains.
func (e *env) assertNoContainers(ids []string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var left []string
		for _, p := range processesOf("kiln-monitor\x00"+e.root+"\x00", "kiln-exec\x00"+e.root+"\x00") {
			left = append(left, "monitor "+p)
		}
		for _, id := range ids {
			dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kiln/" + id)
			left = append(left, dirs...)
			if d := "/sys/fs/cgroup/kiln/" + id; exists(d) {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("left behind: %v", left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func (e *env) inspectF(format, ref string) string {
	e.t.Helper()
	return strings.TrimSpace(e.kiln("inspect", "--format", format, ref))
}

func TestContainerRunExitCodesAndOutput(t *testing.T) {
	e := newContainerEnv(t)
	if out := e.kiln("run", "--rm", "bb", "echo", "hi", "there"); out != "hi there\n" {
		t.Errorf("run echo = %q", out)
	}
	r := e.run("", "run", "--name", "three", "bb", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exit 3: %+v", r)
	}
	if got := e.inspectF("{{.State.Status}} {{.State.ExitCode}} {{.Name}}", "three"); got != "exited 3 /three" {
		t.Errorf("inspect = %q", got)
	}
	r = e.run("", "run", "--rm", "bb", "no-such-command")
	if r.code != 127 || !strings.Contains(r.stderr, "executable file not found") {
		t.Errorf("missing executable: %+v", r)
	}
	r = e.run("", "run", "--rm", "bb", "/etc/passwd")
	if r.code != 126 {
		t.Errorf("not executable: %+v", r)
	}
	// (PID 1 cannot SIGKILL itself from inside its namespace: a child does.)
	r = e.run("", "run", "--rm", "bb", "sh", "-c", `sh -c 'kill -9 $$'; exit $?`)
	if r.code != 137 {
		t.Errorf("killed by SIGKILL: exit %d, want 137", r.code)
	}
	// Overrides and the image's defaults.
	out := e.kiln("run", "--rm", "-e", "A=1", "--env-file", writeTemp(t, "A=2\nB=3\n# c\n"), "-w", "/work", "-u", "app",
		"--hostname", "box", "bb", "sh", "-c", `echo $A $B $(pwd) $(id -u) $(hostname) $HOME $HOSTNAME`)
	if out != "1 3 /work 1000 box /home/app box\n" {
		t.Errorf("overrides: %q", out)
	}
	if out := e.kiln("run", "--rm", "--entrypoint", "echo", "bb", "a", "b"); out != "a b\n" {
		t.Errorf("--entrypoint: %q", out)
	}
	if out := e.kiln("run", "--rm", "-i", "bb", "cat"); out != "" {
		t.Errorf("-i with empty stdin: %q", out)
	}
	if r := e.run("piped\n", "run", "--rm", "-i", "bb", "cat"); r.stdout != "piped\n" {
		t.Errorf("-i: %+v", r)
	}
	// The short ID is the default hostname, and /etc/hostname says so.
	id := strings.TrimSpace(e.kiln("create", "bb", "sh", "-c", "hostname; cat /etc/hostname"))
	if out := e.kiln("start", "-a", id); out != id[:12]+"\n"+id[:12]+"\n" {
		t.Errorf("hostname: %q", out)
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContainerLifecycle(t *testing.T) {
	e := newContainerEnv(t)
	id := strings.TrimSpace(e.kiln("run", "-d", "--name", "loop", "bb", "sh", "-c", "echo started; echo oops >&2; while true; do sleep 0.05; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	pid, _ := strconv.Atoi(e.inspectF("{{.State.Pid}}", "loop"))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("State.Pid %d is not alive", pid)
	}
	if q := e.kiln("ps", "-q"); q != id[:12]+"\n" {
		t.Errorf("ps -q = %q", q)
	}
	if f := e.kiln("ps", "--format", "{{.Names}} {{.State}}"); f != "loop running\n" {
		t.Errorf("ps --format = %q", f)
	}
	waitFor(t, func() bool { return strings.Contains(e.kiln("logs", "loop"), "started") })
	r := e.run("", "logs", "loop")
	if r.stdout != "started\n" || r.stderr != "oops\n" {
		t.Errorf("logs: %+v", r)
	}
	if out := e.kiln("logs", "-t", "loop"); !strings.HasSuffix(out, " started\n") || !strings.Contains(out, "T") {
		t.Errorf("logs -t: %q", out)
	}
	// A name in use is refused, and nothing is created.
	r = e.run("", "run", "-d", "--name", "loop", "bb", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "already in use") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("name in use: %+v", r)
	}
	// rm of a running container needs -f.
	if r := e.run("", "rm", "loop"); r.code == 0 {
		t.Errorf("rm of a running container succeeded")
	}
	// PID 1 ignores SIGTERM: stop waits for the timeout, then SIGKILLs.
	start := time.Now()
	e.kiln("stop", "-t", "1", "loop")
	if d := time.Since(start); d < time.Second {
		t.Errorf("stop -t 1 did not wait for the timeout: %v", d)
	}
	if got := e.inspectF("{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", id); got != "exited 137 false" {
		t.Errorf("after stop: %q", got)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("process %d still alive", pid)
	}
	// A trapped SIGTERM ends it early with its own code; restart works.
	e.kiln("run", "-d", "--name", "trap", "bb", "sh", "-c", `trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done`)
	waitFor(t, func() bool { return strings.Contains(e.kiln("logs", "trap"), "ready") })
	// Its own exit code (not SIGKILL's 137): stop did not wait for the timeout.
	e.kiln("stop", "trap")
	if got := e.inspectF("{{.State.ExitCode}}", "trap"); got != "7" {
		t.Errorf("trapped exit = %s", got)
	}
	e.kiln("start", "trap")
	if got := e.inspectF("{{.State.Status}}", "trap"); got != "running" {
		t.Errorf("after start: %s", got)
	}
	e.kiln("kill", "-s", "TERM", "trap")
	if got := strings.TrimSpace(e.kiln("wait", "trap")); got != "7" {
		t.Errorf("wait = %q", got)
	}
	e.kiln("rm", "loop", "trap")
	if out := e.kiln("ps", "-aq"); out != "" {
		t.Errorf("after rm: %q", out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within a minute")
}

// Killing the kiln that started a container, detached or attached, never
// stops it.
func TestContainerSurvivesItsClient(t *testing.T) {
	e := newContainerEnv(t)
	self, _ := os.Executable()
	cmd := exec.Command(self, "--root", e.root, "run", "--name", "fg", "bb", "sh", "-c", "echo up; while true; do sleep 0.05; done")
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "up\n" {
		t.Fatalf("attached output %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(100 * time.Millisecond)
	if got := e.inspectF("{{.State.Status}}", "fg"); got != "running" {
		t.Fatalf("after killing the client: %s", got)
	}
	// The monitor's death, though, is seen by ps at once.
	e.killMonitor(e.inspectF("{{.Id}}", "fg"))
	waitFor(t, func() bool { return e.inspectF("{{.State.Status}}", "fg") == "exited" })
	if q := e.kiln("ps", "-q"); q != "" {
		t.Errorf("ps after the monitor died: %q", q)
	}
}

// killMonitor SIGKILLs a container's monitor and waits (up to 5 s) for the
// process to be gone.
func (e *env) killMonitor(id string) {
	e.t.Helper()
	var st struct {
		MonitorPid int `json:"kilnMonitorPid"`
	}
	data, err := os.ReadFile(filepath.Join(e.root, "containers", id, "state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.MonitorPid <= 0 {
		e.t.Fatalf("no monitor pid in state: %v %s", err, data)
	}
	if err := syscall.Kill(st.MonitorPid, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for exists(filepath.Join("/proc", strconv.Itoa(st.MonitorPid), "cmdline")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func TestContainerOOMAndPidsLimit(t *testing.T) {
	e := newContainerEnv(t)
	r := e.run("", "run", "--name", "oom", "-m", "16m", "bb", "sh", "-c", "x=a; while true; do x=$x$x; done")
	if r.code != 137 {
		t.Errorf("OOM exit %d: %s", r.code, r.stderr)
	}
	if got := e.inspectF("{{.State.OOMKilled}} {{.HostConfig.Memory}}", "oom"); got != "true 16777216" {
		t.Errorf("OOM inspect: %q", got)
	}
	if got := e.inspectF("{{.State.OOMKilled}}", strings.TrimSpace(e.kiln("run", "-d", "-m", "16m", "bb", "true"))); got != "false" {
		t.Errorf("OOMKilled without OOM: %s", got)
	}
	// A fork bomb stays under the limit, and the container can be removed.
	id := strings.TrimSpace(e.kiln("run", "-d", "--pids-limit", "32", "bb", "sh", "-c", "f() { f | f & }; f; sleep 100"))
	cur := filepath.Join("/sys/fs/cgroup/pids/kiln", id, "pids.current")
	if !exists(cur) {
		cur = filepath.Join("/sys/fs/cgroup/kiln", id, "pids.current")
	}
	// The bomb grows until the limit stops it: watch it for a while (a
	// loaded machine may take a moment to start it) and never see it past 32.
	var data []byte
	var err error
	most := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if data, err = os.ReadFile(cur); err != nil {
			break
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		most = max(most, n)
		if n > 32 {
			break
		}
	}
	if err != nil || most > 32 || most < 2 {
		t.Errorf("pids.current = %q (at most %d seen), %v", data, most, err)
	}
	e.kiln("rm", "-f", id)
	// --cpus and --cpu-shares land in the cgroup.
	id = strings.TrimSpace(e.kiln("run", "-d", "--cpus", "0.5", "--cpu-shares", "512", "bb", "sleep", "100"))
	if q, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu/kiln", id, "cpu.cfs_quota_us")); err == nil {
		s, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu/kiln", id, "cpu.shares"))
		if strings.TrimSpace(string(q)) != "50000" || strings.TrimSpace(string(s)) != "512" {
			t.Errorf("cpu cgroup: quota %q shares %q", q, s)
		}
	} else if m, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/kiln", id, "cpu.max")); err != nil || strings.TrimSpace(string(m)) != "50000 100000" {
		t.Errorf("cpu.max %q, %v", m, err)
	}
	e.kiln("rm", "-f", id)
	if r := e.run("", "run", "--rm", "-m", "lots", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "memory") {
		t.Errorf("bad memory: %+v", r)
	}
}

func TestContainerIsolation(t *testing.T) {
	e := newContainerEnv(t)
	capEff := func(args ...string) string {
		out := e.kiln(append(append([]string{"run", "--rm"}, args...), "bb", "grep", "CapEff", "/proc/self/status")...)
		return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
	}
	if got := capEff(); got != "00000000a80425fb" {
		t.Errorf("default CapEff %s, want docker's 00000000a80425fb", got)
	}
	host, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(host), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			if got := capEff("--privileged"); got != strings.TrimSpace(strings.TrimPrefix(l, "CapEff:")) {
				t.Errorf("privileged CapEff %s, host %s", got, l)
			}
		}
	}
	if got := capEff("--cap-drop", "ALL", "--cap-add", "net_admin"); got != "0000000000001000" {
		t.Errorf("cap-drop ALL + NET_ADMIN: %s", got)
	}
	if got := capEff("-u", "app"); got != "0000000000000000" {
		t.Errorf("non-root CapEff %s", got)
	}
	out := e.kiln("run", "--rm", "--network", "none", "bb", "sh", "-c", `
		grep NoNewPrivs /proc/self/status
		wc -c < /proc/keys
		ls /proc/scsi 2>/dev/null | wc -l
		echo x > /proc/sys/kernel/hostname 2>/dev/null || echo sys-ro
		touch /sys/x 2>/dev/null || echo sysfs-ro
		ip link 2>/dev/null | grep -c '^[0-9]' || cat /proc/net/dev | tail -n +3 | wc -l
		cat /proc/1/cmdline | tr '\0' ' '; echo`)
	want := "NoNewPrivs:\t0\n0\n0\nsys-ro\nsysfs-ro\n1\nsh -c \n" // as docker: no_new_privs only with --security-opt no-new-privileges
	if !strings.HasPrefix(out, want[:strings.Index(want, "sh -c")]) {
		t.Errorf("isolation:\n%s\nwant\n%s", out, want)
	}
	if out := e.kiln("run", "--rm", "--privileged", "bb", "sh", "-c", "grep NoNewPrivs /proc/self/status; test -c /dev/kmsg && echo devices"); out != "NoNewPrivs:\t0\ndevices\n" {
		t.Errorf("privileged: %q", out)
	}
	if r := e.run("", "run", "--rm", "--read-only", "bb", "touch", "/x"); r.code == 0 {
		t.Errorf("--read-only rootfs is writable")
	}
	if got := e.inspectF("{{.HostConfig.Privileged}}", strings.TrimSpace(e.kiln("create", "--privileged", "bb", "true"))); got != "true" {
		t.Errorf("HostConfig.Privileged = %s", got)
	}
}

func TestContainerVolumes(t *testing.T) {
	e := newContainerEnv(t)
	e.kiln("volume", "create", "data")
	var vols []map[string]any
	if err := json.Unmarshal([]byte(e.kiln("volume", "inspect", "data")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("volume inspect: %v", err)
	}
	mp := filepath.Join(e.root, "volumes", "data", "_data")
	if vols[0]["Mountpoint"] != mp || vols[0]["Driver"] != "local" || vols[0]["Name"] != "data" {
		t.Errorf("volume inspect: %v", vols[0])
	}
	// Two containers share a volume; :ro is enforced.
	e.kiln("run", "-d", "--name", "writer", "-v", "data:/data", "bb", "sh", "-c", "echo one > /data/f; sleep 100")
	waitFor(t, func() bool { return exists(filepath.Join(mp, "f")) })
	if out := e.kiln("run", "--rm", "-v", "data:/data:ro", "bb", "cat", "/data/f"); out != "one\n" {
		t.Errorf("reader sees %q", out)
	}
	if r := e.run("", "run", "--rm", "-v", "data:/data:ro", "bb", "sh", "-c", "echo two > /data/f"); r.code == 0 {
		t.Errorf("write to a :ro volume succeeded")
	}
	if r := e.run("", "volume", "rm", "data"); r.code == 0 {
		t.Errorf("removed a volume in use")
	}
	// Bind mounts, and --mount.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644)
	if out := e.kiln("run", "--rm", "-v", host+":/h", "bb", "sh", "-c", "cat /h/in; echo back > /h/out"); out != "from host\n" {
		t.Errorf("bind: %q", out)
	}
	if data, _ := os.ReadFile(filepath.Join(host, "out")); string(data) != "back\n" {
		t.Errorf("bind write-back: %q", data)
	}
	if out := e.kiln("run", "--rm", "--mount", "type=bind,source="+host+",target=/h,readonly", "--mount", "type=tmpfs,target=/t", "bb",
		"sh", "-c", "touch /h/x 2>/dev/null || echo ro; touch /t/x && echo tmpfs"); out != "ro\ntmpfs\n" {
		t.Errorf("--mount: %q", out)
	}
	if got := e.inspectF("{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", "writer"); got != "volume data /data true" {
		t.Errorf("Mounts: %q", got)
	}
	for _, bad := range [][]string{{"-v", "a:b:c:d"}, {"-v", "data:relative"}, {"--mount", "type=bind,source=/no/such/dir,target=/x"}, {"--mount", "type=nfs,target=/x"}} {
		r := e.run("", append(append([]string{"run", "--rm"}, bad...), "bb", "true")...)
		if r.code != 125 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: %+v", bad, r)
		}
	}
	e.kiln("rm", "-f", "writer")
	e.kiln("volume", "rm", "data")
	if out := e.kiln("volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left: %q", out)
	}
	if out := e.kiln("ps", "-aq"); out != "" {
		t.Errorf("bad specs left containers: %q", out)
	}
}

func TestContainerSizeAndInspect(t *testing.T) {
	e := newContainerEnv(t)
	e.kiln("run", "--name", "sized", "bb", "sh", "-c", "head -c 1000000 /dev/zero > /big; mkdir -p /d; echo hello > /d/f; ln -f /big /big2")
	id := e.inspectF("{{.Id}}", "sized")
	var want int64
	upper := filepath.Join(e.root, "containers", id, "upper")
	if got := e.inspectF("{{.GraphDriver.Data.UpperDir}}", "sized"); got != upper {
		t.Errorf("UpperDir %s", got)
	}
	// du's apparent size of the files, each inode once (du -b without directories).
	out, err := exec.Command("sh", "-c", `find "$1" ! -type d -printf '%i %s\n' | sort -u | awk '{s+=$2} END {print s}'`, "-", upper).Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ = strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if want != 1000006 {
		t.Errorf("du says %d", want)
	}
	if got := e.inspectF("{{.SizeRw}}", "sized"); got != "<nil>" { // as docker prints a nil *int64
		t.Errorf("SizeRw without --size: %q", got)
	}
	if got := strings.TrimSpace(e.kiln("inspect", "--size", "--format", "{{.SizeRw}}", "sized")); got != strconv.FormatInt(want, 10) {
		t.Errorf("SizeRw %s, want %d", got, want)
	}
	if got := e.kiln("ps", "-as", "--format", "{{.Size}}"); !strings.HasPrefix(got, "1MB (virtual ") {
		t.Errorf("ps -s: %q", got)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(e.kiln("inspect", "sized")), &objs); err != nil || len(objs) != 1 {
		t.Fatal(err)
	}
	for _, k := range []string{"Id", "Name", "State", "Config", "HostConfig", "GraphDriver", "Mounts", "NetworkSettings", "Path", "Args", "Image"} {
		if _, ok := objs[0][k]; !ok {
			t.Errorf("inspect lacks %s", k)
		}
	}
	if got := e.inspectF("{{json .Config.Cmd}} {{.Path}} {{.Config.Image}}", "sized"); !strings.HasPrefix(got, `["sh","-c",`) || !strings.HasSuffix(got, " sh bb") {
		t.Errorf("Config: %s", got)
	}
	// An image is still inspectable by name, and a container's layers
	// survive the removal of its image.
	// --type image: "bb" is also a prefix of one container ID in 256, and
	// inspect, like docker's, tries containers first.
	if got := strings.TrimSpace(e.kiln("inspect", "--type", "image", "--format", "{{.Os}}", "bb")); got != "linux" {
		t.Errorf("image inspect: %s", got)
	}
	// (The container is stopped: rmi by ID with -f deletes the image, as docker's.)
	e.kiln("rmi", "-f", strings.TrimSpace(e.kiln("inspect", "--type", "image", "--format", "{{.Id}}", "bb")))
	s, err := cache.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	_, gcErr := s.GC(t.Context())
	s.Close()
	if gcErr != nil {
		t.Fatal(gcErr)
	}
	if out := e.kiln("start", "-a", "sized"); out != "" {
		t.Errorf("restart after rmi+gc: %q", out)
	}
	if got := e.inspectF("{{.State.ExitCode}}", "sized"); got != "0" {
		t.Errorf("restart after rmi+gc exited %s", got)
	}
}

func TestContainerRestartPolicyAndLogsFollow(t *testing.T) {
	e := newContainerEnv(t)
	e.kiln("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "bb", "sh", "-c", "echo run; exit 1")
	waitFor(t, func() bool {
		return e.inspectF("{{.State.Status}} {{.RestartCount}}", "flaky") == "exited 2"
	})
	if out := e.kiln("logs", "flaky"); out != "run\nrun\nrun\n" {
		t.Errorf("logs after restarts: %q", out)
	}
	if out := e.kiln("logs", "--tail", "1", "flaky"); out != "run\n" {
		t.Errorf("logs --tail 1: %q", out)
	}
	e.kiln("run", "-d", "--name", "ticker", "bb", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done")
	if out := e.kiln("logs", "-f", "ticker"); out != "1\n2\n3\n" {
		t.Errorf("logs -f: %q", out)
	}
}

func TestContainersInParallel(t *testing.T) {
	e := newContainerEnv(t)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.run("", "run", "--rm", "bb", "sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i%3))
			if r.stdout != fmt.Sprintf("%d\n", i) || r.code != i%3 {
				errs <- fmt.Sprintf("container %d: %+v", i, r)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	if out := e.kiln("ps", "-aq"); out != "" {
		t.Errorf("--rm left %q", out)
	}
}

func TestContainerBadInput(t *testing.T) {
	e := newContainerEnv(t)
	for _, args := range [][]string{
		{"run", "--rm", "--pull", "never", "nosuchimage"}, // (without: a pull, and docker's "Unable to find image" line first)
		{"run", "--rm", "--cap-add", "CAP_NOPE", "bb", "true"},
		{"run", "--rm", "--restart", "sometimes", "bb", "true"},
		{"run", "--rm", "--restart", "always", "bb", "true"},
		{"start", "nosuchcontainer"},
		{"logs", "nosuchcontainer"},
		{"inspect", "nosuchcontainer"},
	} {
		r := e.run("", args...)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stderr == "" {
			t.Errorf("%v: %+v", args, r)
		}
	}
	if out := e.kiln("ps", "-aq"); out != "" {
		t.Errorf("bad input left containers: %q", out)
	}
}
