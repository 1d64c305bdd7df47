package runner

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestValidateSysctl(t *testing.T) {
	for _, tc := range []struct {
		name       string
		privateNet bool
		ok         bool
	}{
		{"kernel.msgmax", false, true},
		{"kernel.shm_rmid_forced", false, true},
		{"fs.mqueue.msg_max", false, true},
		{"net.ipv4.ip_forward", true, true},
		{"net.ipv4.ip_forward", false, false},
		{"kernel.hostname", true, false},
		{"vm.swappiness", true, false},
		{"fs.mqueue.", true, false},
		{"net.", true, false},
	} {
		err := ValidateSysctl(tc.name, tc.privateNet)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateSysctl(%q, %v) = %v", tc.name, tc.privateNet, err)
		}
	}
	if err := ValidateSysctl("vm.swappiness", true); !errors.Is(err, ErrSysctlNotNamespaced) {
		t.Errorf("vm.swappiness: %v", err)
	}
	for name, want := range map[string]string{
		"net.ipv4.ip_forward":             "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/1.forwarding": "/proc/sys/net/ipv4/conf/eth0.1/forwarding",
		"net..x":                          "", "../x": "", ".x": "", "net./.": "",
	} {
		got, err := sysctlPath(name)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	v1, unified := parseProcCgroup("12:cpu,cpuacct:/kiln/x\n3:pids:/kiln/x\n1:name=systemd:/user.slice\n0::/\n")
	if !unified || len(v1) != 3 {
		t.Fatalf("%v %v", v1, unified)
	}
	if v1[0].dir() != "cpu,cpuacct" || v1[0].options() != "cpu,cpuacct" || strings.Join(v1[0].links(), " ") != "cpu cpuacct" {
		t.Errorf("cpu,cpuacct: %s %s %v", v1[0].dir(), v1[0].options(), v1[0].links())
	}
	if v1[1].links() != nil || v1[2].dir() != "systemd" || v1[2].options() != "none,name=systemd" || v1[2].links() != nil {
		t.Errorf("pids, systemd: %v", v1)
	}
	if v1, unified := parseProcCgroup("0::/kiln/x\n"); len(v1) != 0 || !unified {
		t.Errorf("v2: %v %v", v1, unified)
	}
}

// Rlimits, the /dev/shm size, sysctls and the cgroup namespace with its
// /sys/fs/cgroup reach the sandbox.
func TestRunLimitsSysctlsCgroupfs(t *testing.T) {
	name := fmt.Sprintf("kiln-test-%d/limits", os.Getpid())
	cg, err := NewCgroup(name, Resources{CPUShares: 512, PidsLimit: 33})
	if err != nil {
		t.Fatalf("new cgroup: %v", err)
	}
	removeParents(t, cg)
	defer cg.Remove()
	script := `ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1 | awk '{print "shm " $2}'; ` +
		`cat /proc/sys/kernel/msgmax /proc/sys/fs/mqueue/msg_max; `
	pids := "/sys/fs/cgroup/pids/pids.max"
	if cg.v2 {
		pids = "/sys/fs/cgroup/pids.max"
		script += `cat /sys/fs/cgroup/cpu.weight ` + pids + `; `
	} else {
		script += `cat /sys/fs/cgroup/cpu/cpu.shares ` + pids + `; `
	}
	script += `cat /proc/self/cgroup | grep -c ':/$'; (echo 33 > ` + pids + `) 2>/dev/null || echo read-only`
	s := newSpec(t, true, "sh", "-c", script)
	s.Rlimits = []Rlimit{{Type: syscall.RLIMIT_NOFILE, Soft: 321, Hard: 654}}
	s.ShmSize = 3 << 20
	s.Sysctls = map[string]string{"kernel.msgmax": "4321", "fs.mqueue.msg_max": "17"}
	s.Cgroups, s.CgroupNS = cg.Dirs(), true
	out := strings.Fields(mustRun(t, s))
	want := []string{"321", "654", "shm", "3072", "4321", "17"}
	if cg.v2 {
		want = append(want, "20", "33") // cpu.weight of 512 shares
	} else {
		want = append(want, "512", "33")
	}
	if len(out) < len(want)+2 || strings.Join(out[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q then the cgroup lines", out, want)
	}
	if out[len(out)-2] == "0" || out[len(out)-1] != "read-only" {
		t.Errorf("cgroup namespace (lines rooted at /) and read-only cgroupfs: %q", out)
	}
}
