package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnifiedPath(t *testing.T) {
	for data, want := range map[string]string{
		"12:pids:/user.slice\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n": "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope",
		"0::/\n":                "/",
		"12:pids:/user.slice\n": "",
	} {
		if got, ok := unifiedPath(data); got != want || ok != (want != "") {
			t.Errorf("unifiedPath(%q) = %q, %v", data, got, ok)
		}
	}
}

// TestDelegatedCgroup: without cgroup v2 there is nothing to delegate; with
// it, the subtree is the topmost cgroup above this process's that it may
// write (a directory tree standing in for /sys/fs/cgroup).
func TestDelegatedCgroup(t *testing.T) {
	v1 := t.TempDir()
	if _, err := delegatedCgroup(v1); !errors.Is(err, ErrNoCgroups) || !strings.Contains(err.Error(), "is not cgroup v2") {
		t.Errorf("cgroup v1: %v", err)
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own, ok := unifiedPath(string(data))
	if !ok {
		t.Skip("no cgroup v2 line in /proc/self/cgroup")
	}
	v2 := t.TempDir()
	for d := filepath.Join(v2, own); ; d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "cgroup.procs"), nil, 0o644)
		if d == v2 {
			break
		}
	}
	os.WriteFile(filepath.Join(v2, "cgroup.controllers"), []byte("memory pids\n"), 0o444)
	if os.Geteuid() == 0 {
		// root may write all of it: the whole tree is the subtree.
		if got, err := delegatedCgroup(v2); err != nil || got != v2 {
			t.Errorf("delegatedCgroup = %s, %v; want %s", got, err, v2)
		}
	}
}
