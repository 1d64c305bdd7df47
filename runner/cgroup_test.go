package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestCgroupFiles(t *testing.T) {
	r := Resources{Memory: 64 << 20, PidsLimit: 10, CPUShares: 1024, NanoCPUs: 1.5e9, Devices: []string{"c 1:3 rwm"}}
	v1 := []cgroupFile{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"pids", "pids.max", "10"},
		{"cpu", "cpu.shares", "1024"},
		{"devices", "devices.deny", "a"},
		{"devices", "devices.allow", "c 1:3 rwm"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "150000"},
	}
	if got := cgroupFiles(r, false); !slices.Equal(got, v1) {
		t.Errorf("v1:\n%v\nwant\n%v", got, v1)
	}
	// v2: runc's shares-to-weight conversion, cpu.max; device rules are
	// not files there but a program attached to the cgroup (devices_linux.go).
	v2 := []cgroupFile{
		{"memory", "memory.max", "67108864"},
		{"pids", "pids.max", "10"},
		{"cpu", "cpu.weight", "39"},
		{"cpu", "cpu.max", "150000 100000"},
	}
	if got := cgroupFiles(r, true); !slices.Equal(got, v2) {
		t.Errorf("v2:\n%v\nwant\n%v", got, v2)
	}
	// Zero is no limit; shares and quotas are clamped as runc does.
	if got := cgroupFiles(Resources{}, false); len(got) != 0 {
		t.Errorf("no limits: %v", got)
	}
	for shares, weight := range map[int64]string{2: "1", 1: "1", 262144: "10000", 1 << 20: "10000"} {
		if got := cgroupFiles(Resources{CPUShares: shares}, true); got[0].Value != weight {
			t.Errorf("shares %d: weight %s, want %s", shares, got[0].Value, weight)
		}
	}
	if got := cgroupFiles(Resources{NanoCPUs: 1e6}, true); got[0].Value != "1000 100000" {
		t.Errorf("a tiny --cpus: %v", got)
	}
	// An empty rule list denies everything.
	if got := cgroupFiles(Resources{Devices: []string{}}, false); !slices.Equal(got, []cgroupFile{{"devices", "devices.deny", "a"}}) {
		t.Errorf("no devices: %v", got)
	}
}

func TestParseFlatKeyed(t *testing.T) {
	data := "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	if n, ok := parseFlatKeyed(data, "oom_kill"); !ok || n != 3 {
		t.Errorf("oom_kill = %d, %v", n, ok)
	}
	if _, ok := parseFlatKeyed(data, "oom"); ok {
		t.Errorf("a key's prefix matched")
	}
	if _, ok := parseFlatKeyed("oom_kill x\n", "oom_kill"); ok {
		t.Errorf("a bad number parsed")
	}
}

func TestDeviceRule(t *testing.T) {
	for _, tc := range []struct{ path, perms, want string }{
		{"/dev/null", "", "c 1:3 rwm"},
		{"/dev/zero", "r", "c 1:5 r"},
	} {
		if got, err := DeviceRule(tc.path, tc.perms); err != nil || got != tc.want {
			t.Errorf("DeviceRule(%s, %q) = %q, %v", tc.path, tc.perms, got, err)
		}
	}
	for _, bad := range [][2]string{{"/dev/null", "rx"}, {"/etc/passwd", ""}, {"/no/such/dev", ""}} {
		if _, err := DeviceRule(bad[0], bad[1]); err == nil {
			t.Errorf("DeviceRule(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

// A real cgroup: limits written, processes listed, everything removed.
func TestNewCgroup(t *testing.T) {
	kilntest.RequireRoot(t)
	name := fmt.Sprintf("kiln-test-%d/c", os.Getpid())
	r := Resources{Memory: 64 << 20, PidsLimit: 10, Devices: DefaultDevices}
	cg, err := NewCgroup(name, r)
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	removeParents(t, cg)
	defer cg.Remove()
	read := func(ctl, file string) string {
		t.Helper()
		dir := cg.dirs[ctl]
		if cg.v2 {
			dir = cg.dirs[""]
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	if cg.v2 {
		if got := read("", "memory.max"); got != "67108864" {
			t.Errorf("memory.max %s", got)
		}
	} else {
		if got := read("memory", "memory.limit_in_bytes"); got != "67108864" {
			t.Errorf("memory.limit_in_bytes %s", got)
		}
		if _, ok := cg.dirs["devices"]; ok {
			if got := read("devices", "devices.list"); !strings.Contains(got, "c 1:3 rwm") || strings.Contains(got, "a *:* rwm") {
				t.Errorf("devices.list:\n%s", got)
			}
		}
	}
	if got := read("pids", "pids.max"); got != "10" {
		t.Errorf("pids.max %s", got)
	}
	if pids := cg.Pids(); len(pids) != 0 || cg.OOMKilled() {
		t.Errorf("a new cgroup: pids %v, OOM %v", pids, cg.OOMKilled())
	}
	// A v1 cpuset cgroup works (it has CPUs and memory nodes), given by
	// the kernel from a parent that clones them to its children.
	if dir, ok := cg.dirs["cpuset"]; ok && !cg.v2 {
		if !cpusetSet(dir) {
			t.Errorf("%s has no cpuset.cpus or cpuset.mems", dir)
		}
		if got, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.clone_children")); strings.TrimSpace(string(got)) != "1" {
			t.Errorf("%s: cgroup.clone_children %q, want 1", filepath.Dir(dir), got)
		}
	}
	// OpenCgroup finds the same directories; Remove takes them, and leaves
	// their parent for the next.
	if !slices.Equal(OpenCgroup(name).Dirs(), cg.Dirs()) {
		t.Errorf("OpenCgroup: %v, NewCgroup: %v", OpenCgroup(name).Dirs(), cg.Dirs())
	}
	if err := cg.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range cg.Dirs() {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
		if _, err := os.Stat(filepath.Dir(d)); err != nil {
			t.Errorf("the parent of %s: %v", d, err)
		}
	}
}

// removeParents removes the parent directories of cg's directories when
// the test ends (Remove leaves them), after cleanups registered later; one
// that holds others' cgroups (EBUSY: the host's "kiln") stays.
func removeParents(t *testing.T, cg *Cgroup) {
	t.Cleanup(func() {
		for _, d := range cg.Dirs() {
			if err := unix.Rmdir(filepath.Dir(d)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) {
				t.Errorf("remove %s: %v", filepath.Dir(d), err)
			}
		}
	})
}

// Remove kills what is left in the cgroup.
func TestCgroupRemoveKills(t *testing.T) {
	s := newSpec(t, true, "sleep", "100")
	cg, err := NewCgroup(fmt.Sprintf("kiln-test-%d/k", os.Getpid()), Resources{PidsLimit: 5})
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	removeParents(t, cg)
	s.Cgroups = cg.Dirs()
	done := make(chan int, 1)
	started := make(chan struct{})
	go func() {
		p, _, err := Start(s)
		close(started)
		if err != nil {
			t.Error(err)
			done <- -1
			return
		}
		code, _ := p.Wait()
		done <- code
	}()
	<-started
	deadline := time.Now().Add(time.Minute)
	for len(cg.Pids()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(cg.Pids()) == 0 {
		t.Fatal("the sandbox never showed up in its cgroup")
	}
	if err := cg.Remove(); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 137 {
		t.Errorf("the sandbox exited %d, want 137 (killed)", code)
	}
}

func TestParseDeviceRule(t *testing.T) {
	for s, want := range map[string]deviceRule{
		"c 1:3 rwm":         {'c', 1, 3, "rwm"},
		"b *:* m":           {'b', -1, -1, "m"},
		"c 136:* rw":        {'c', 136, -1, "rw"},
		"c *:3 w":           {'c', -1, 3, "w"},
		"b 4095:1048575 mr": {'b', 4095, 1048575, "mr"},
		"a":                 {'a', -1, -1, "rwm"},
		"a *:* rwm":         {'a', -1, -1, "rwm"},
	} {
		if got, err := parseDeviceRule(s); err != nil || got != want {
			t.Errorf("parseDeviceRule(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "c", "c 1:3", "c 1:3 ", "c 1:3 rwx", "c 1:3 rwmr", "x 1:3 r", "c 1 r", "c 1:3:4 r", "c -1:3 r",
		"c +1:3 r", "c 4096:0 r", "c 0:1048576 r", "c 1:3  r", " c 1:3 r", "c a:3 r", "a 1:3 r", "a *:* r",
		"cc 1:3 r", "c 1:3 rwm extra",
	} {
		if r, err := parseDeviceRule(bad); err == nil {
			t.Errorf("parseDeviceRule(%q) = %+v, want an error", bad, r)
		}
	}
	// Every rule kiln writes parses.
	if _, err := parseDeviceRules(DefaultDevices); err != nil {
		t.Error(err)
	}
	if r, err := DeviceRule("/dev/null", "r"); err != nil {
		t.Error(err)
	} else if _, err := parseDeviceRule(r); err != nil {
		t.Error(err)
	}
}

// Whatever parses is a rule the device program and devices.allow take,
// and parses again the same from its canonical form.
func FuzzParseDeviceRule(f *testing.F) {
	for _, s := range append(slices.Clone(DefaultDevices), "a", "b 8:* rw", "c 1:3 rwx", "c 01:3 r") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseDeviceRule(s)
		if err != nil {
			return
		}
		if !strings.ContainsRune("abc", rune(r.Type)) || r.Major < -1 || r.Major > maxDeviceMajor ||
			r.Minor < -1 || r.Minor > maxDeviceMinor || r.Access == "" || strings.Trim(r.Access, "rwm") != "" {
			t.Fatalf("%q parsed to %+v", s, r)
		}
		num := func(n int64) string {
			if n < 0 {
				return "*"
			}
			return fmt.Sprint(n)
		}
		canon := fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
		if again, err := parseDeviceRule(canon); err != nil || again != r {
			t.Fatalf("%q parsed to %+v, its form %q to %+v, %v", s, r, canon, again, err)
		}
	})
}
