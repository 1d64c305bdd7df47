package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cgroupFile reads a control file of the container's v1 cgroup (this
// machine's; v2 is covered by the runner's unit tests of the file lists).
func (e *env) cgroupFile(ref, controller, name string) string {
	e.t.Helper()
	id := e.inspectF("{{.Id}}", ref)
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "kiln", id, name))
	if err != nil {
		if _, v2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); v2 == nil {
			e.t.Skip("cgroup v1 file checks: this machine is cgroup v2")
		}
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// Live resources: pause/unpause with the freezer, stop and kill of a
// paused container, update of a running container's limits and restart
// policy, stats, rename, --memory-swap and --cpuset-cpus.
func TestContainerLiveResources(t *testing.T) {
	e := newContainerEnv(t)
	e.kiln("run", "-d", "--name", "ka", "--memory", "32m", "--memory-swap", "64m", "--cpuset-cpus", "0", "bb",
		"sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done")
	if got := e.cgroupFile("ka", "memory", "memory.memsw.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memsw limit %s", got)
	}
	if got := e.cgroupFile("ka", "cpuset", "cpuset.cpus"); got != "0" {
		t.Errorf("cpuset %s", got)
	}
	if r := e.run("", "run", "--network", "none", "--memory-swap", "64m", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "memory limit") {
		t.Errorf("--memory-swap without --memory: %+v", r)
	}
	if r := e.run("", "run", "--network", "none", "--cpuset-cpus", "4096", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "not available") {
		t.Errorf("--cpuset-cpus of a missing CPU: %+v", r)
	}

	// Paused: the freezer holds every process; ps and inspect say so.
	e.kiln("pause", "ka")
	if got := e.cgroupFile("ka", "freezer", "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer %s", got)
	}
	if got := e.inspectF("{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "ka"); got != "paused true true" {
		t.Errorf("paused state %q", got)
	}
	if ps := e.kiln("ps", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(ps), "(Paused)") {
		t.Errorf("ps %q", ps)
	}
	if r := e.run("", "pause", "ka"); r.code == 0 {
		t.Error("pausing a paused container succeeded")
	}
	e.kiln("unpause", "ka")
	if got := e.inspectF("{{.State.Status}}", "ka"); got != "running" {
		t.Errorf("unpaused state %q", got)
	}

	// Update a running container: the cgroup changes at once, inspect shows it.
	e.kiln("update", "--memory", "48m", "--memory-swap", "96m", "--cpus", "0.5", "--cpu-shares", "512",
		"--pids-limit", "40", "--cpuset-cpus", "0-1", "--restart", "on-failure:3", "ka")
	for _, c := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(48 << 20)},
		{"memory", "memory.memsw.limit_in_bytes", strconv.Itoa(96 << 20)},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.shares", "512"},
		{"pids", "pids.max", "40"},
		{"cpuset", "cpuset.cpus", "0-1"},
	} {
		if got := e.cgroupFile("ka", c.ctl, c.file); got != c.want {
			t.Errorf("after update: %s = %s, want %s", c.file, got, c.want)
		}
	}
	if got := e.inspectF("{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "ka"); got != strconv.Itoa(48<<20)+" 40 on-failure" {
		t.Errorf("inspect after update %q", got)
	}
	if r := e.run("", "update", "ka"); r.code == 0 {
		t.Error("update without flags succeeded")
	}

	// stats: one reading of the cgroup and the network namespace.
	got := e.kiln("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}|{{.NetIO}}", "ka")
	f := strings.Split(strings.TrimSpace(got), "|")
	if len(f) != 5 || f[0] != "ka" || !strings.HasSuffix(f[1], " / 48MiB") || f[2] == "0" || !strings.HasSuffix(f[3], "%") || !strings.Contains(f[4], " / ") {
		t.Errorf("stats %q", got)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(e.kiln("stats", "--no-stream", "--format", "json", "ka")), &row); err != nil || row["Name"] != "ka" || row["PIDs"] == "" {
		t.Errorf("stats --format json: %v %v", row, err)
	}
	if r := e.run("", "stats", "--no-stream", "--format", "{{.NoSuchField}}", "ka"); r.code == 0 {
		t.Errorf("stats with an unknown template field: exit 0")
	}
	if table := e.kiln("stats", "--no-stream"); !strings.HasPrefix(table, "CONTAINER ID   NAME      CPU %") {
		t.Errorf("stats table:\n%s", table)
	}

	// rename: the new name finds it, the old one no longer does (names
	// that are not hex, or the old one could be a prefix of the ID).
	e.kiln("rename", "ka", "kb")
	if got := e.inspectF("{{.Name}}", "kb"); got != "/kb" {
		t.Errorf("renamed %q", got)
	}
	if r := e.run("", "inspect", "ka"); r.code == 0 {
		t.Error("the old name still resolves")
	}
	e.kiln("run", "-d", "--network", "none", "--name", "kc", "bb", "sleep", "1000")
	if r := e.run("", "rename", "kb", "kc"); r.code == 0 || !strings.Contains(r.stderr, "already in use") {
		t.Errorf("rename onto a taken name: %+v", r)
	}

	// stop and kill work on paused containers: the signal lands once thawed.
	e.kiln("pause", "kb", "kc")
	e.kiln("stop", "kb")
	if got := e.inspectF("{{.State.Status}} {{.State.ExitCode}}", "kb"); got != "exited 7" {
		t.Errorf("stopped paused container %q", got)
	}
	e.kiln("kill", "kc")
	if got := e.inspectF("{{.State.Status}} {{.State.ExitCode}}", "kc"); got != "exited 137" {
		t.Errorf("killed paused container %q", got)
	}
}
