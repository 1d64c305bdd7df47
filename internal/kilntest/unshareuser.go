package kilntest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// UnshareUser is an ordinary user made for one test (removed after it),
// with a directory it owns, in which a test runs programs as rootless kiln
// until the rootless core enters kiln's user namespace by itself: each Run
// is one `unshare --user --map-root-user --map-auto --mount` (the user's
// subordinate ids mapped too), whose processes share
// one user and mount namespace as rootless kiln's processes will under its
// pause process.
type UnshareUser struct {
	Name     string
	UID, GID int
	Dir      string // owned by the user: RuntimeDir (Dir/rt) and Store (Dir/store) are in it
	t        testing.TB
}

// NewUnshareUser makes the user, its directory (readable by all, for the
// programs copied there) and, when /dev/net/tun is not usable by every
// user (it is on Debian, whose udev makes it 0666; a container's /dev may
// make it 0600), makes it so for the test.
func NewUnshareUser(t testing.TB) *UnshareUser {
	t.Helper()
	RequireRoot(t)
	NeedTool(t, "unshare")
	NeedTool(t, "useradd")
	NeedTool(t, "newuidmap")
	name := fmt.Sprintf("kilnrl%d", time.Now().UnixNano()%100000000)
	if out, err := exec.Command("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Skipf("cannot add a user: %v: %s", err, out)
	}
	u := &UnshareUser{Name: name, t: t}
	t.Cleanup(func() {
		u.waitNoProcesses()
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	pu, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	u.UID, _ = strconv.Atoi(pu.Uid)
	u.GID, _ = strconv.Atoi(pu.Gid)
	// A subordinate range (useradd gives one when login.defs says so),
	// for images whose files have many owners.
	if ids, _ := os.ReadFile("/etc/subuid"); !bytes.Contains(ids, []byte("\n"+name+":")) && !bytes.HasPrefix(ids, []byte(name+":")) {
		first := 1000000 + time.Now().UnixNano()%10000*65536
		r := fmt.Sprintf("%d-%d", first, first+65535)
		if out, err := exec.Command("usermod", "--add-subuids", r, "--add-subgids", r, name).CombinedOutput(); err != nil {
			t.Fatalf("usermod %s: %v: %s", name, err, out)
		}
	}
	UsableTun(t)
	if u.Dir, err = os.MkdirTemp("", "kiln-rl-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(u.Dir) })
	if err := os.Chmod(u.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{u.RuntimeDir(), u.Store()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// RuntimeDir is the user's kiln runtime directory.
func (u *UnshareUser) RuntimeDir() string { return filepath.Join(u.Dir, "rt") }

// Store is the user's kiln store.
func (u *UnshareUser) Store() string { return filepath.Join(u.Dir, "store") }

// Copy copies the file src into the user's directory as name, executable
// and readable by all, and returns its path.
func (u *UnshareUser) Copy(src, name string) string {
	u.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		u.t.Fatal(err)
	}
	p := filepath.Join(u.Dir, name)
	if err := os.WriteFile(p, data, 0o755); err != nil {
		u.t.Fatal(err)
	}
	return p
}

// Env is the environment that makes kiln rootless for the user.
func (u *UnshareUser) Env() []string {
	return []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"_KILN_ROOTLESS_UID=" + strconv.Itoa(u.UID), "_KILN_ROOTLESS_RUNTIME_DIR=" + u.RuntimeDir(),
	}
}

// Run runs argv as the user in a user and mount namespace of its own,
// with Env and env, and returns its combined output.
func (u *UnshareUser) Run(env []string, argv ...string) ([]byte, error) {
	cmd := exec.Command("unshare", append([]string{"--user", "--map-root-user", "--map-auto", "--mount", "--"}, argv...)...)
	cmd.Env = append(u.Env(), env...)
	cmd.Dir = u.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}}
	return cmd.CombinedOutput()
}

// waitNoProcesses waits until no live process of the user is left (a
// detached one killed at the end of a test takes a moment to go), and
// fails the test after a minute.
func (u *UnshareUser) waitNoProcesses() {
	deadline := time.Now().Add(time.Minute)
	for pids := u.Processes(); len(pids) > 0; pids = u.Processes() {
		if time.Now().After(deadline) {
			u.t.Errorf("processes of user %s left: %v", u.Name, pids)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Processes lists the user's live processes (zombies, gone but for their
// parent's wait, left out).
func (u *UnshareUser) Processes() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != u.UID {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// KillPidFile SIGKILLs the process whose pid the file holds, if its
// command name is comm.
func KillPidFile(path, comm string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	if c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(c)) == comm {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// HostAddress is the host's IPv4 address of its default route (not a
// loopback one), or skips t.
func HostAddress(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "get", "1").Output()
	if err != nil {
		t.Skipf("no default route: %v", err)
	}
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "src" {
			return f[i+1]
		}
	}
	t.Skipf("no source address in %q", out)
	return ""
}

// ServeHello serves "hello from ADDR" over HTTP on addr until t ends and
// returns the address bound.
func ServeHello(t testing.TB, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", l.Addr())
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// UsableTun makes /dev/net/tun usable by every user for the test when it is
// not (Debian's udev makes it 0666; a machine or container without udev may
// leave it 0600): slirp4netns, started by rootless kiln, opens it.
func UsableTun(t testing.TB) {
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/net/tun", 0o666); err == nil {
			t.Cleanup(func() { os.Chmod("/dev/net/tun", fi.Mode().Perm()) })
		}
	}
}
