package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// firstChildPid is a command that prints the PID of the first process it
// starts: in the sandbox's PID namespace the init is 1, and the C init
// execs the command without a thread of its own ever made, so the child
// is 2; a Go init's runtime threads took the PIDs after 1 before it.
var firstChildPid = []string{"sh", "-c", "sleep 0 & echo $!"}

// withGoInit runs fn with every sandbox on the Go init.
func withGoInit(t *testing.T, fn func()) {
	t.Helper()
	testGoInit = true
	defer func() { testGoInit = false }()
	fn()
}

func TestCInitRunsSandbox(t *testing.T) {
	for _, goInit := range []bool{false, true} {
		s := newSpec(t, true, firstChildPid...)
		var out strings.Builder
		s.Stdout, s.Stderr = &out, &out
		start := func() *Process {
			p, code, err := Start(s)
			if err != nil {
				t.Fatalf("Start = %d, %v", code, err)
			}
			return p
		}
		var p *Process
		if goInit {
			withGoInit(t, func() { p = start() })
		} else {
			p = start()
		}
		if code, err := p.Wait(); code != 0 || err != nil {
			t.Fatalf("Wait = %d, %v; output %q", code, err, out.String())
		}
		pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("output %q", out.String())
		}
		if p.cInit == goInit || (pid == 2) == goInit {
			t.Fatalf("Go init %v: the parent sent a plan: %v, the first child is PID %d", goInit, p.cInit, pid)
		}
	}
}

// TestCInitTakesConfinedSandboxes: the sandboxes of RUN steps (every
// network mode, mounts, --security=insecure) and of containers without a
// terminal get a plan; a terminal, a tiny init, hooks or a volume to fill
// go to the Go init.
func TestCInitTakesConfinedSandboxes(t *testing.T) {
	confined, err := Security{}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	insecure, err := Security{Privileged: true}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	base := func() *Spec {
		s := &Spec{Lowers: []string{"/l"}, Upper: "/u", Work: "/w", Rootfs: "/r", Args: []string{"true"}}
		confined.Confine(s)
		return s
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Spec)
		cInit bool
	}{
		{"run", func(*Spec) {}, true},
		{"network none", func(s *Spec) { s.Network = "none" }, true},
		{"insecure", func(s *Spec) { insecure.Confine(s) }, true},
		{"mounts", func(s *Spec) {
			s.ExtraMounts = []Mount{{Type: "tmpfs", Source: "tmpfs", Target: "/t"}, {Type: "bind", Source: "/etc", Target: "/e", Options: []string{"rbind", "ro"}}}
		}, true},
		{"container", func(s *Spec) {
			s.CgroupNS, s.ReadonlyRootfs, s.Sysctls = true, true, map[string]string{"net.ipv4.ip_forward": "1"}
			s.Rlimits = []Rlimit{{Type: 7, Soft: 100, Hard: 200}}
			s.Devices = []Device{{Source: "/dev/null", Target: "/dev/xnull"}}
		}, true},
		{"terminal", func(s *Spec) { s.Terminal = true }, false},
		{"tiny init", func(s *Spec) { s.Init = true }, false},
		{"hooks", func(s *Spec) { s.Hooks = &Hooks{} }, false},
		{"volume to fill", func(s *Spec) {
			s.ExtraMounts = []Mount{{Type: "rbind", Source: "/etc", Target: "/v", Options: []string{"rbind"}}}
			s.Populate = []string{"/v"}
		}, false},
		{"NUL in an argument", func(s *Spec) { s.Args = []string{"a\x00b"} }, false},
	} {
		s := base()
		tc.edit(s)
		cfg, err := newInitConfig(s)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, ok := cPlan(cfg); ok != tc.cInit {
			t.Errorf("%s: plan %v, want %v", tc.name, ok, tc.cInit)
		}
	}
}

// TestCInitAsGoInit runs sandboxes, and sandboxes that fail to start, on
// both inits: the command sees the same, and a failure is the same error
// (and exit code).
func TestCInitAsGoInit(t *testing.T) {
	confined, err := Security{}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	status := "grep -E '^(Cap|Seccomp|NoNewPrivs|Groups)' /proc/self/status; id; pwd; stat -c '%U:%G %a' .; ulimit -n; cat /proc/sys/kernel/hostname; " +
		"ls /dev; ls -ld /proc/interrupts /proc/timer_list /proc/acpi 2>&1 | cut -c1-10; (echo d > /proc/sys/kernel/domainname) 2>&1; cat /proc/sys/kernel/domainname; env | sort"
	for _, tc := range []struct {
		name string
		edit func(*Spec)
	}{
		{"root", func(*Spec) {}},
		{"confined", func(s *Spec) {
			confined.Confine(s)
			s.NoNewPrivileges = true
			s.Rlimits = []Rlimit{{Type: 7, Soft: 512, Hard: 1024}} // RLIMIT_NOFILE
			s.Network = "none"
		}},
		{"user and new working directory", func(s *Spec) {
			confined.Confine(s)
			s.User, s.Cwd, s.Env = "app", "/home/app/a/b", []string{"A=1", "PATH=/bin"}
		}},
		{"uid:gid", func(s *Spec) { s.User = "1000:2000" }},
		{"unknown user", func(s *Spec) { s.User = "nobody" }},
		{"unknown group", func(s *Spec) { s.User = "app:nogroup" }},
		{"uid out of range", func(s *Spec) { s.User = "4294967296" }},
		{"missing executable", func(s *Spec) { s.Args = []string{"nope"} }},
		{"missing path", func(s *Spec) { s.Args = []string{"/bin/nope"} }},
		{"not executable", func(s *Spec) { s.Args = []string{"/etc/passwd"} }},
		{"directory", func(s *Spec) { s.Args = []string{"/bin"} }},
		{"working directory through a file", func(s *Spec) { s.Cwd = "/etc/passwd/x" }},
		{"working directory through a magic link", func(s *Spec) { s.Cwd = "/proc/self/cwd/x" }},
		{"mount target through a file", func(s *Spec) {
			s.ExtraMounts = []Mount{{Type: "tmpfs", Source: "tmpfs", Target: "/etc/passwd/x"}}
		}},
		// The image's user files are hostile too.
		{"passwd a FIFO", func(s *Spec) { s.User = "app"; replaceFile(t, s, "etc/passwd", "fifo") }},
		{"passwd a device", func(s *Spec) { s.User = "app"; replaceFile(t, s, "etc/passwd", "link:/dev/zero") }},
		{"passwd a directory", func(s *Spec) { s.User = "app"; replaceFile(t, s, "etc/passwd", "dir") }},
		{"no group file", func(s *Spec) { s.User = "app"; replaceFile(t, s, "etc/group", "") }},
		{"passwd too large", func(s *Spec) {
			s.User = "app"
			replaceFile(t, s, "etc/passwd", "data:"+strings.Repeat("#\n", 5<<20+1))
		}},
		{"passwd line too long", func(s *Spec) {
			s.User = "app"
			replaceFile(t, s, "etc/passwd", "data:#"+strings.Repeat("x", 1<<20)+"\n"+testPasswd)
		}},
		{"odd lines", func(s *Spec) {
			s.User = "bob"
			replaceFile(t, s, "etc/passwd", "data:# c\r\n\n  bob:x:+1001:1000:b::/bin/sh:extra:fields \r\nbad:x:1:\nbad2:x:a:1:::\n")
			replaceFile(t, s, "etc/group", "data:g1:x:3000: bob , x ,,bob\ng2:x:3001:x,bob:more\ng3:x:nope:bob\n#g4:x:3002:bob\n")
		}},
		{"numeric user", func(s *Spec) { s.User = "4242" }},
		{"numeric user and group name", func(s *Spec) { s.User = "4242:extra" }},
		{"root and a numeric group", func(s *Spec) { s.User = "root:1234" }},
		{"negative uid", func(s *Spec) { s.User = "-1" }},
	} {
		var results [2]string
		for i, goInit := range []bool{false, true} {
			s := newSpec(t, true, "sh", "-c", status)
			s.Hostname = "h"
			tc.edit(s)
			var code int
			var out, errOut string
			var err error
			if goInit {
				withGoInit(t, func() { code, out, errOut, err = run(t, s) })
			} else {
				code, out, errOut, err = run(t, s)
			}
			results[i] = fmt.Sprintf("code %d, err %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
			if got := listTree(t, s.Upper); err != nil && len(got) != 0 {
				t.Errorf("%s: upper after a setup failure: %v", tc.name, got)
			}
		}
		if results[0] != results[1] {
			t.Errorf("%s: the C init:\n%s\nthe Go init:\n%s", tc.name, results[0], results[1])
		}
	}
}

// TestCInitHostileMountTargets: mount targets, devices and stubs reached
// through the image's symlinks stay inside the root, and the stubs, whatever
// their names, leave the layer; on both inits.
func TestCInitHostileMountTargets(t *testing.T) {
	for _, goInit := range []bool{false, true} {
		if goInit {
			withGoInit(t, func() { testHostileMountTargets(t) })
		} else {
			testHostileMountTargets(t)
		}
	}
}

func testHostileMountTargets(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSpec(t, true, "sh", "-c", "grep -c ' /escape/m ' /proc/self/mountinfo; ls -l /escape/dev")
	// Absolute and relative ways out of the root: both end up inside it.
	for name, target := range map[string]string{"abs": outside, "rel": "../../../../../../../.." + outside} {
		if err := os.Symlink(target, filepath.Join(s.Lowers[0], name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/escape", filepath.Join(s.Lowers[0], "esc")); err != nil {
		t.Fatal(err)
	}
	// A stub whose name is no UTF-8, and has what JSON escapes.
	if err := os.Symlink("/we\"i\\rd\n\xff", filepath.Join(s.Lowers[0], "odd")); err != nil {
		t.Fatal(err)
	}
	s.ExtraMounts = []Mount{
		{Type: "tmpfs", Source: "tmpfs", Target: "/abs/m"},
		{Type: "tmpfs", Source: "tmpfs", Target: "/rel/n"},
		{Type: "tmpfs", Source: "tmpfs", Target: "/esc/m"},
		{Type: "tmpfs", Source: "tmpfs", Target: "/odd/o"},
	}
	s.Devices = []Device{{Source: "/dev/null", Target: "/esc/dev/null"}}
	out := mustRun(t, s)
	if !strings.HasPrefix(out, "1\n") || !strings.Contains(out, "null") {
		t.Fatalf("output %q", out)
	}
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 0 {
		t.Fatalf("outside the root: %v, %v", entries, err)
	}
	// The stubs the targets took are gone from the layer; the device is
	// the command's.
	if got := listTree(t, s.Upper); strings.Join(got, ",") != "escape,escape/dev,escape/dev/null" {
		t.Fatalf("upper: %v", got)
	}
}

// TestCInitPrestarted: an init started ahead of its spec (Prestart) runs
// it in C too.
func TestCInitPrestarted(t *testing.T) {
	s := newSpec(t, true, firstChildPid...)
	pre, err := Prestart(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	s.Prestarted = pre
	var out strings.Builder
	s.Stdout = &out
	code, err := Run(context.Background(), s)
	if code != 0 || err != nil || strings.TrimSpace(out.String()) != "2" {
		t.Fatalf("Run = %d, %v; first child %q, want 2", code, err, out.String())
	}
}

// replaceFile replaces rel in the spec's image with what how says:
// "fifo", "dir", "link:TARGET", "data:CONTENT", or nothing ("").
func replaceFile(t *testing.T, s *Spec, rel, how string) {
	t.Helper()
	p := filepath.Join(s.Lowers[0], rel)
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	var err error
	switch kind, arg, _ := strings.Cut(how, ":"); kind {
	case "fifo":
		err = unix.Mkfifo(p, 0o644)
	case "dir":
		err = os.Mkdir(p, 0o755)
	case "link":
		err = os.Symlink(arg, p)
	case "data":
		err = os.WriteFile(p, []byte(arg), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}
