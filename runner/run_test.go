package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"true", 0},
		{"exit 3", 3},
		{"sh -c 'kill -9 $$'; exit $?", 137}, // a child shell killed by a signal: sh reports 128+9
	} {
		t.Run(tc.script, func(t *testing.T) {
			s := newSpec(t, true, "sh", "-c", tc.script)
			code, _, errOut, err := run(t, s)
			if err != nil || code != tc.want {
				t.Fatalf("Run = %d, %v (stderr %q); want %d", code, err, errOut, tc.want)
			}
		})
	}
}

func TestRunKilledBySignal(t *testing.T) {
	s := newSpec(t, true, "sleep", "31337")
	go func() {
		// The command is PID 1 of its namespace: only a signal from outside
		// (SIGKILL) can kill it.
		for range 6000 { // a minute
			if pid := findProcess(t, "sleep\x0031337\x00"); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	code, _, _, err := run(t, s)
	if err != nil || code != 128+9 {
		t.Fatalf("Run = %d, %v; want 137", code, err)
	}
}

func findProcess(t testing.TB, cmdline string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); string(b) == cmdline {
			return pid
		}
	}
	return 0
}

func TestRunOutputAndStdin(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "cat; echo out; echo err >&2")
	s.Stdin = strings.NewReader("in\n")
	code, out, errOut, err := run(t, s)
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if out != "in\nout\n" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
}

func TestRunEnv(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", `echo "$FOO|$PATH|$HOME"`)
	s.Env = []string{"FOO=bar"}
	if out := mustRun(t, s); out != "bar|"+DefaultPath+"|/root\n" {
		t.Fatalf("default env: %q", out)
	}

	s = newSpec(t, true, "sh", "-c", `echo "$PATH|$HOME"`)
	s.Env = []string{"PATH=/bin", "HOME=/h"}
	s.User = "app"
	if out := mustRun(t, s); out != "/bin|/h\n" {
		t.Fatalf("explicit env: %q", out)
	}

	s = newSpec(t, true, "sh", "-c", `echo "$HOME"`)
	s.User = "app"
	if out := mustRun(t, s); out != "/home/app\n" {
		t.Fatalf("HOME of app: %q", out)
	}
}

func TestRunCwd(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "pwd; stat -c %u:%g /work /work/dir")
	s.Cwd = "/work/dir"
	s.User = "app"
	if out := mustRun(t, s); out != "/work/dir\n1000:1000\n1000:1000\n" {
		t.Fatalf("got %q", out)
	}
	fi, err := os.Stat(filepath.Join(s.Upper, "work/dir"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 || fi.Mode().Perm() != 0o755 {
		t.Fatalf("work/dir in upper: %v %d:%d", fi.Mode(), st.Uid, st.Gid)
	}

	s = newSpec(t, true, "pwd")
	if out := mustRun(t, s); out != "/\n" {
		t.Fatalf("default cwd %q", out)
	}
}

func TestRunUser(t *testing.T) {
	for _, tc := range []struct{ user, want string }{
		{"", "uid=0(root) gid=0(root) groups=0(root)"},
		{"app", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)"},
		{"1000", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)"},
		{"1000:2000", "uid=1000(app) gid=2000(extra) groups=2000(extra)"},
		{"app:extra", "uid=1000(app) gid=2000(extra) groups=2000(extra)"},
		{"4242", "uid=4242 gid=0(root) groups=0(root)"},
		{"4242:4343", "uid=4242 gid=4343 groups=4343"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			s := newSpec(t, true, "id")
			s.User = tc.user
			if out := mustRun(t, s); out != tc.want+"\n" {
				t.Fatalf("id = %q, want %q", out, tc.want)
			}
		})
	}
}

func TestRunUnknownUser(t *testing.T) {
	s := newSpec(t, true, "id")
	s.User = "nobody"
	code, _, _, err := run(t, s)
	if !errors.Is(err, ErrNoPasswdEntries) || !strings.Contains(err.Error(), "unable to find user nobody: no matching entries in passwd file") {
		t.Fatalf("Run = %d, %v", code, err)
	}
	s = newSpec(t, true, "id")
	s.User = "app:nogroup"
	if _, _, _, err := run(t, s); !errors.Is(err, ErrNoGroupEntries) {
		t.Fatalf("unknown group: %v", err)
	}
	if got := listTree(t, s.Upper); len(got) != 0 {
		t.Fatalf("upper after setup failure: %v", got)
	}
}

func TestRunExecNotFound(t *testing.T) {
	for _, tc := range []struct {
		arg0, msg string
		code      int
	}{
		{"nope", `exec: "nope": executable file not found in $PATH`, 127},
		{"/bin/nope", `exec: "/bin/nope": stat /bin/nope: no such file or directory`, 127},
		{"/etc/passwd", `exec: "/etc/passwd": access /etc/passwd: permission denied`, 126},
	} {
		s := newSpec(t, true, tc.arg0)
		code, _, _, err := run(t, s)
		if code != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Fatalf("Run(%s) = %d, %v; want %d, %s", tc.arg0, code, err, tc.code, tc.msg)
		}
		if (tc.code == 127) != errors.Is(err, ErrExecutableNotFound) {
			t.Fatalf("errors.Is(%v, ErrExecutableNotFound) mismatch", err)
		}
		if got := listTree(t, s.Upper); len(got) != 0 {
			t.Fatalf("upper after setup failure: %v", got)
		}
	}
}

func TestRunIsolation(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo $$; hostname")
	host, _ := os.Hostname()
	if out := mustRun(t, s); out != "1\nkiln\n" {
		t.Fatalf("got %q", out)
	}
	s = newSpec(t, true, "hostname")
	s.Hostname = "box"
	if out := mustRun(t, s); out != "box\n" {
		t.Fatalf("got %q", out)
	}
	if h, _ := os.Hostname(); h != host {
		t.Fatalf("host hostname changed: %q -> %q", host, h)
	}
}

func TestRunDevProcSys(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", strings.Join([]string{
		"echo x > /dev/null",
		"head -c 5 /dev/zero | wc -c",
		"head -c 5 /dev/urandom | wc -c",
		"test -c /dev/full && test -c /dev/tty && test -c /dev/pts/ptmx && test -L /dev/ptmx",
		"test -d /dev/shm && test -L /dev/fd && test -L /dev/stdin",
		"stat -c %a /dev/shm",
		`test "$(head -c 5 /proc/1/stat)" = "1 (sh" && echo proc`,
		"test -d /sys/class && ! touch /sys/x 2>/dev/null && echo sys-ro",
		"test -f /etc/resolv.conf && ! touch /etc/resolv.conf 2>/dev/null && echo resolv-ro",
	}, " && "))
	if out := mustRun(t, s); out != "5\n5\n1777\nproc\nsys-ro\nresolv-ro\n" {
		t.Fatalf("got %q", out)
	}
}

func TestRunWritesLandInUpper(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "echo hello > /new && rm /bin/ls")
	mustRun(t, s)
	if b, err := os.ReadFile(filepath.Join(s.Upper, "new")); err != nil || string(b) != "hello\n" {
		t.Fatalf("upper/new: %q, %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.Upper, "bin/ls"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("bin/ls in upper is not a 0/0 whiteout: mode %o rdev %d", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(s.Lowers[0], "bin/ls")); err != nil {
		t.Fatalf("lower changed: %v", err)
	}
	if got, want := listTree(t, s.Upper), []string{"bin", "bin/ls", "new"}; !slices.Equal(got, want) {
		t.Fatalf("upper = %v, want %v", got, want)
	}
}

func TestRunNoStubLeak(t *testing.T) {
	for _, tc := range []struct {
		name    string
		withEtc bool
		extra   bool
	}{
		{"etc", true, false},
		{"scratch-like", false, false},
		{"extra-mounts", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t, tc.withEtc, "true")
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if tc.withEtc {
				if err := os.Chtimes(filepath.Join(s.Lowers[0], "etc"), old, old); err != nil {
					t.Fatal(err)
				}
			}
			if tc.extra {
				src := t.TempDir()
				if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
				s.ExtraMounts = []Mount{
					{Type: "tmpfs", Source: "tmpfs", Target: "/run/a/b"},
					{Type: "bind", Source: filepath.Join(src, "f"), Target: "/etc/secret/f", Options: []string{"ro"}},
					{Type: "bind", Source: src, Target: "/run/a/b/c"}, // nested in the tmpfs: no stub in upper
				}
				s.Args = []string{"sh", "-c", "cat /etc/secret/f /run/a/b/c/f"}
				if out := mustRun(t, s); out != "datadata" {
					t.Fatalf("extra mounts: %q", out)
				}
				if _, err := os.Stat(filepath.Join(src, "c")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("nested mount point made in the bind source: %v", err)
				}
			} else {
				mustRun(t, s)
			}
			if got := listTree(t, s.Upper); len(got) != 0 {
				t.Fatalf("upper not empty: %v", got)
			}
		})
	}
}

func TestRunStubParentKeepsWrites(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "touch /etc/added && mkdir -p /tmp/x")
	mustRun(t, s)
	if got, want := listTree(t, s.Upper), []string{"etc", "etc/added", "tmp", "tmp/x"}; !slices.Equal(got, want) {
		t.Fatalf("upper = %v, want %v", got, want)
	}
}

func TestRunStubTimesRestored(t *testing.T) {
	// /etc is in upper already (as if an earlier step wrote there): the
	// stubs in it are removed and its times restored exactly.
	s := newSpec(t, true, "true")
	etc := filepath.Join(s.Upper, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for _, p := range []string{etc, s.Upper} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, s)
	if got, want := listTree(t, s.Upper), []string{"etc", "etc/keep"}; !slices.Equal(got, want) {
		t.Fatalf("upper = %v, want %v", got, want)
	}
	for _, p := range []string{etc, s.Upper} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(old) {
			t.Fatalf("%s mtime %v, want %v", p, fi.ModTime(), old)
		}
	}
}

func TestRunNetwork(t *testing.T) {
	s := newSpec(t, true, "sh", "-c", "cat /proc/net/dev; cat /sys/class/net/lo/flags")
	s.Network = "none"
	out := mustRun(t, s)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ifaces []string
	for _, l := range lines[2 : len(lines)-1] {
		name, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		ifaces = append(ifaces, name)
	}
	if !slices.Equal(ifaces, []string{"lo"}) {
		t.Fatalf("interfaces %v, want only lo", ifaces)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(lines[len(lines)-1], "0x"), 16, 32)
	if err != nil || flags&unix.IFF_UP == 0 {
		t.Fatalf("lo flags %q: not up", lines[len(lines)-1])
	}

	// The host network: the same network namespace as this process (its
	// interfaces may change meanwhile, other tests make veths).
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	s = newSpec(t, true, "stat", "-L", "-c", "%i", "/proc/self/ns/net")
	if out := strings.TrimSpace(mustRun(t, s)); out != strconv.FormatUint(host.Ino, 10) {
		t.Fatalf("host network: namespace inode %s, host's %d", out, host.Ino)
	}
	s = newSpec(t, true, "true")
	s.Network = "bridge"
	if _, err := Run(context.Background(), s); err == nil {
		t.Fatal("unknown network accepted")
	}
}

// Cancelling Run's context kills the whole sandbox, whether Run started its
// init or took a prestarted one.
func TestRunCancel(t *testing.T) {
	for _, prestart := range []bool{false, true} {
		t.Run(fmt.Sprint("prestarted=", prestart), func(t *testing.T) {
			s := newSpec(t, true, "sh", "-c", "sleep 4242 & sleep 4242")
			if prestart {
				p, err := Prestart(nil, false)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				s.Prestarted = p
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			code, err := Run(ctx, s)
			if !errors.Is(err, context.DeadlineExceeded) || code != 137 {
				t.Fatalf("Run = %d, %v", code, err)
			}
			if pid := findProcess(t, "sleep\x004242\x00"); pid > 0 {
				t.Fatalf("sleep %d survived", pid)
			}
		})
	}
}

func TestRunScratchNoLowers(t *testing.T) {
	s := newSpec(t, true, "/bin/busybox", "sh", "-c", "echo hi > /f; /bin/busybox ls /")
	// The "image" is the upper itself: an empty base with a binary added by an earlier step.
	if err := os.MkdirAll(filepath.Join(s.Upper, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(s.Lowers[0], "bin/busybox"))
	if err := os.WriteFile(filepath.Join(s.Upper, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Lowers = nil
	out := mustRun(t, s)
	if !strings.Contains(out, "f\n") {
		t.Fatalf("ls /: %q", out)
	}
	if got, want := listTree(t, s.Upper), []string{"bin", "bin/busybox", "f"}; !slices.Equal(got, want) {
		t.Fatalf("upper = %v, want %v", got, want)
	}
}

func BenchmarkRunTrue(b *testing.B) {
	s := newSpec(b, true, "/bin/true")
	var out bytes.Buffer
	s.Stdout, s.Stderr = &out, &out
	base := filepath.Dir(s.Upper)
	i := 0
	for b.Loop() {
		// Fresh upper and work directories, as the builder uses them.
		b.StopTimer()
		i++
		s.Upper, s.Work = filepath.Join(base, fmt.Sprint("upper", i)), filepath.Join(base, fmt.Sprint("work", i))
		if err := os.Mkdir(s.Upper, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Mkdir(s.Work, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if code, err := Run(context.Background(), s); err != nil || code != 0 {
			b.Fatalf("Run = %d, %v: %s", code, err, out.String())
		}
	}
}
