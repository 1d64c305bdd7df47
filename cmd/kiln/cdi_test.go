package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// writeFakeGPUSpec writes, in a CDI spec directory of its own, a spec for
// two fake GPUs of kind nvidia.com/gpu (character devices made with mknod,
// 240:0 and 240:1, numbers the kernel leaves to local use), an "all"
// device, a library file mounted read-only, environment variables and a
// hook at each stage kiln runs; it returns the directory and the file the
// host-side hooks append to.
func writeFakeGPUSpec(t *testing.T) (specDir, hookLog string) {
	t.Helper()
	dir := t.TempDir()
	specDir, hookLog = filepath.Join(dir, "cdi"), filepath.Join(dir, "hooks.log")
	if err := os.Mkdir(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"gpu0", "gpu1"} {
		if err := unix.Mknod(filepath.Join(dir, name), unix.S_IFCHR|0o660, int(unix.Mkdev(240, uint32(i)))); err != nil {
			t.Skipf("cannot make a fake device with mknod: %v", err)
		}
	}
	lib := filepath.Join(dir, "libfakegpu.so")
	if err := os.WriteFile(lib, []byte("fake driver\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// createContainer runs in the container's namespaces before pivot_root:
	// it finds the root in the bundle's config.json the state names.
	hook := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(hook, []byte(`#!/bin/sh
state=$(cat)
status=$(echo "$state" | sed -n 's/.*"status":"\([^"]*\)".*/\1/p')
bundle=$(echo "$state" | sed -n 's/.*"bundle":"\([^"]*\)".*/\1/p')
case $1 in
create) root=$(sed -n 's/.*"path": *"\([^"]*\)".*/\1/p' "$bundle/config.json" | head -1); echo "$1 $status" > "$root/hooked" ;;
*) echo "$1 $status" >> "$2" ;;
esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	hookEnv := []string{"PATH=/usr/bin:/bin"}
	node := func(i int) map[string]any {
		return map[string]any{"path": "/dev/nvidia" + string(rune('0'+i)), "hostPath": filepath.Join(dir, "gpu"+string(rune('0'+i)))}
	}
	spec := map[string]any{
		"cdiVersion": "0.6.0",
		"kind":       "nvidia.com/gpu",
		"devices": []any{
			map[string]any{"name": "0", "containerEdits": map[string]any{"deviceNodes": []any{node(0)}, "env": []string{"FAKE_GPU_0=yes"}}},
			map[string]any{"name": "1", "containerEdits": map[string]any{"deviceNodes": []any{node(1)}, "env": []string{"FAKE_GPU_1=yes"}}},
			map[string]any{"name": "all", "containerEdits": map[string]any{"deviceNodes": []any{node(0), node(1)}}},
		},
		"containerEdits": map[string]any{
			"env":    []string{"FAKE_DRIVER=1.0"},
			"mounts": []any{map[string]any{"hostPath": lib, "containerPath": "/usr/lib/libfakegpu.so", "options": []string{"ro", "nosuid", "nodev", "bind"}}},
			"hooks": []any{
				map[string]any{"hookName": "createContainer", "path": hook, "args": []string{"hook.sh", "create"}, "env": hookEnv},
				map[string]any{"hookName": "startContainer", "path": "/bin/sh", "args": []string{"sh", "-c", "cat > /started"}},
				map[string]any{"hookName": "poststart", "path": hook, "args": []string{"hook.sh", "poststart", hookLog}, "env": hookEnv},
				map[string]any{"hookName": "poststop", "path": hook, "args": []string{"hook.sh", "poststop", hookLog}, "env": hookEnv},
			},
		},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(specDir, "fake-gpu.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return specDir, hookLog
}

// --gpus and CDI --device apply a CDI spec's edits: each device node (with
// its devices cgroup rule), the mount, the environment, and the hooks.
func TestRunCDIDevices(t *testing.T) {
	e := newContainerEnv(t)
	specDir, hookLog := writeFakeGPUSpec(t)
	t.Setenv("KILN_CDI_SPEC_DIRS", specDir)
	show := `for d in /dev/nvidia*; do echo $d $(stat -c '%t:%T' $d); done; ` +
		`grep -h '^c 240:' /sys/fs/cgroup/devices/devices.list 2>/dev/null | sort; ` +
		`env | grep ^FAKE_ | sort; cat /usr/lib/libfakegpu.so /hooked; grep -q '"status":"created"' /started && echo started; ` +
		`echo x 2>/dev/null > /usr/lib/libfakegpu.so || echo lib-ro`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gpus", "all"}, "/dev/nvidia0 f0:0\n/dev/nvidia1 f0:1\nc 240:0 rwm\nc 240:1 rwm\nFAKE_DRIVER=1.0\n"},
		{[]string{"--gpus", "1"}, "/dev/nvidia0 f0:0\nc 240:0 rwm\nFAKE_DRIVER=1.0\nFAKE_GPU_0=yes\n"},
		{[]string{"--gpus", `"device=1"`}, "/dev/nvidia1 f0:1\nc 240:1 rwm\nFAKE_DRIVER=1.0\nFAKE_GPU_1=yes\n"},
		{[]string{"--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1"}, "/dev/nvidia0 f0:0\n/dev/nvidia1 f0:1\nc 240:0 rwm\nc 240:1 rwm\nFAKE_DRIVER=1.0\nFAKE_GPU_0=yes\nFAKE_GPU_1=yes\n"},
	} {
		os.Remove(hookLog)
		out := e.kiln(append(append([]string{"run", "--rm"}, tc.args...), "bb", "sh", "-c", show)...)
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			tc.want = strings.ReplaceAll(strings.ReplaceAll(tc.want, "c 240:0 rwm\n", ""), "c 240:1 rwm\n", "") // v2: an eBPF program, no list
		}
		if want := tc.want + "fake driver\ncreate creating\nstarted\nlib-ro\n"; out != want {
			t.Errorf("%v:\n%s\nwant:\n%s", tc.args, out, want)
		}
		if log, _ := os.ReadFile(hookLog); string(log) != "poststart running\npoststop stopped\n" {
			t.Errorf("%v: host hooks ran as %q", tc.args, log)
		}
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--device", "nvidia.com/gpu=7"}},
		{[]string{"--gpus", "3"}},
		{[]string{"--device", "example.com/fpga=all"}},
	} {
		r := e.run("", append(append([]string{"run", "--rm"}, tc.args...), "bb", "true")...)
		if r.code != 125 || !strings.Contains(r.stderr, "CDI device not found") || !strings.Contains(r.stderr, specDir) {
			t.Errorf("%v: %+v", tc.args, r)
		}
	}
}
