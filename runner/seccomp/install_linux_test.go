package seccomp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A filter cannot be removed, so the kernel tests run probes in a child: the
// test binary re-executed with helperEnv naming a file with the Filter's
// JSON, as the sandbox init receives it. The child installs the filter, runs
// the probes named in probesEnv and prints "probe=result" lines.
const (
	helperEnv = "KILN_SECCOMP_TEST_FILTER"
	probesEnv = "KILN_SECCOMP_TEST_PROBES"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(helper(path, strings.Split(os.Getenv(probesEnv), ",")))
	}
	os.Exit(m.Run())
}

func helper(path string, probes []string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var f Filter
	if err := json.Unmarshal(data, &f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := f.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, name := range probes {
		fmt.Printf("%s=%s\n", name, kernelProbes[name](filepath.Dir(path)))
	}
	return 0
}

// result names the outcome of a syscall: "ok" or the errno's name.
func result(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func rawResult(_, _ uintptr, errno syscall.Errno) string {
	if errno != 0 {
		return unix.ErrnoName(errno)
	}
	return "ok"
}

func statusField(field string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return result(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

var kernelProbes = map[string]func(dir string) string{
	"seccomp":    func(string) string { return statusField("Seccomp") },
	"nonewprivs": func(string) string { return statusField("NoNewPrivs") },
	"getpid": func(string) string {
		if unix.Getpid() != os.Getpid() || os.Getpid() <= 1 {
			return "wrong pid"
		}
		return "ok"
	},
	"file": func(dir string) string { // open, write, read, close
		p := filepath.Join(dir, "probe")
		if err := os.WriteFile(p, []byte("kiln"), 0o600); err != nil {
			return result(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "kiln" {
			return fmt.Sprintf("read back %q: %v", b, err)
		}
		return "ok"
	},
	"exec": func(string) string { // a plain clone (fork) and execve
		return result(exec.Command("/bin/busybox", "true").Run())
	},
	"clone_newuser": func(string) string {
		cmd := exec.Command("/bin/busybox", "true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
		return result(cmd.Run())
	},
	"unshare_user": func(string) string { return result(unix.Unshare(unix.CLONE_NEWUSER)) },
	"unshare_uts": func(string) string {
		runtime.LockOSThread() // the thread is not given back: the child exits soon
		return result(unix.Unshare(unix.CLONE_NEWUTS))
	},
	"mount": func(string) string { // ENOENT when the filter lets it through
		return result(unix.Mount("none", "/nonexistent-kiln-seccomp-probe", "tmpfs", 0, ""))
	},
	"keyctl": func(string) string {
		return rawResult(unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd) /* KEY_SPEC_SESSION_KEYRING */, 0))
	},
	"clone3": func(string) string { // EINVAL (size 0) when the filter lets it through
		return rawResult(unix.Syscall(unix.SYS_CLONE3, 0, 0, 0))
	},
	"personality_linux": func(string) string {
		return rawResult(unix.Syscall(unix.SYS_PERSONALITY, 0 /* PER_LINUX */, 0, 0))
	},
	"personality_bsd": func(string) string {
		return rawResult(unix.Syscall(unix.SYS_PERSONALITY, 6 /* PER_BSD */, 0, 0))
	},
	"x32_getpid": func(string) string { // ENOSYS from a kernel without x32, if let through
		return rawResult(unix.Syscall(x32Bit|unix.SYS_GETPID, 0, 0, 0))
	},
	"getcwd": func(string) string {
		buf := make([]byte, 4096)
		return rawResult(unix.Syscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0))
	},
}

// runProbes starts the helper with f installed and returns its results.
func runProbes(t *testing.T, f Filter, probes ...string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing a filter without no_new_privs needs CAP_SYS_ADMIN: run as root")
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "filter.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+path, probesEnv+"="+strings.Join(probes, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe process: %v: %s", err, stderr.Bytes())
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	return got
}

func checkProbes(t *testing.T, f Filter, want map[string]string) {
	t.Helper()
	var probes []string
	for p := range want {
		probes = append(probes, p)
	}
	slices.Sort(probes)
	got := runProbes(t, f, probes...)
	for _, p := range probes {
		if got[p] != want[p] {
			t.Errorf("%s: got %s, want %s", p, got[p], want[p])
		}
	}
}

func compile(t *testing.T, p *Profile, caps []string) Filter {
	t.Helper()
	f, err := Compile(p, caps)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestUnfiltered is the control: without a filter every probe below gets
// another answer than under Docker's profile.
func TestUnfiltered(t *testing.T) {
	want := map[string]string{
		"seccomp": "0", "mount": "ENOENT", "keyctl": "ok", "clone3": "EINVAL", "personality_bsd": "ok",
		"unshare_user": "EINVAL", // a multi-threaded process cannot join a new user namespace
	}
	checkProbes(t, Filter{}, want)
}

func TestDefaultProfileInKernel(t *testing.T) {
	want := map[string]string{
		"seccomp": "2", "nonewprivs": "0",
		"getpid": "ok", "file": "ok", "exec": "ok", "personality_linux": "ok",
		"clone_newuser": "EPERM", "unshare_user": "EPERM", "unshare_uts": "EPERM", "mount": "EPERM",
		"keyctl": "EPERM", "personality_bsd": "EPERM",
		"clone3": "ENOSYS", // so that glibc falls back to clone
	}
	if runtime.GOARCH == "amd64" {
		want["x32_getpid"] = "EPERM" // a kernel without x32 would say ENOSYS
	}
	checkProbes(t, compile(t, Default(), dockerCaps), want)
}

func TestDefaultProfileWithSysAdmin(t *testing.T) {
	want := map[string]string{
		"seccomp": "2", "exec": "ok",
		"mount": "ENOENT", "unshare_uts": "ok", "clone3": "EINVAL", // let through to the kernel
		"keyctl": "EPERM", // never allowed
	}
	checkProbes(t, compile(t, Default(), append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN")), want)
}

func TestCustomProfileInKernel(t *testing.T) {
	p, err := Load([]byte(`{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"seccomp": "2", "getcwd": "EINVAL", "getpid": "ok", "mount": "ENOENT", "exec": "ok"}
	if runtime.GOARCH == "amd64" {
		want["x32_getpid"] = "EPERM"
	}
	checkProbes(t, compile(t, p, nil), want)
}
