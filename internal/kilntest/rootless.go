package kilntest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/proc"
)

// User is an ordinary user made for a test (RootlessUser): the rootless
// kiln tests run kiln as it.
type User struct {
	Name     string
	UID, GID int
	Home     string
	// RuntimeDir is the user's XDG_RUNTIME_DIR (its kiln runtime directory
	// is RuntimeDir/kiln).
	RuntimeDir string
	// SubID is the first of the user's 65536 subordinate uids and gids (0:
	// none).
	SubID int
	// Kiln is the binary Command runs: a copy the user can execute.
	Kiln string
	// Env is added to the clean environment of Command (HOME, USER,
	// LOGNAME, PATH, XDG_RUNTIME_DIR).
	Env []string
}

// subIDCount is the size of a test user's subordinate range.
const subIDCount = 65536

// RootlessUser creates a user kilnrl<random> with a home, a runtime
// directory and a subordinate uid and gid range that no other line of
// /etc/subuid or /etc/subgid overlaps, and a copy of the binary kiln (the
// test binary when "") it may run. Cleanup kills every process of the user
// and of its subordinate ids (its pause process, containers), removes its
// files (its store included), the subordinate ranges and the user. It
// skips without root, useradd, or (with a range) newuidmap and newgidmap.
func RootlessUser(t testing.TB, kiln string) *User { return newUser(t, kiln, true) }

// RootlessUserWithoutSubIDs is RootlessUser with no subordinate range: the
// single-uid mapping.
func RootlessUserWithoutSubIDs(t testing.TB, kiln string) *User { return newUser(t, kiln, false) }

func newUser(t testing.TB, kiln string, subIDs bool) *User {
	t.Helper()
	RequireRoot(t)
	NeedTool(t, "useradd")
	if subIDs {
		NeedTool(t, "newuidmap")
		NeedTool(t, "newgidmap")
	}
	u := &User{Name: fmt.Sprintf("kilnrl%06d", rand.IntN(1000000))}
	u.Home = "/home/" + u.Name
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", u.Home, "--shell", "/bin/sh", "--user-group", u.Name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", u.Name, err, out)
	}
	t.Cleanup(u.remove)
	// useradd may give ranges of its own (SUB_UID_COUNT in login.defs):
	// drop them, then add the one chosen here.
	_ = exec.Command("usermod", "--del-subuids", "1-4294967294", "--del-subgids", "1-4294967294", u.Name).Run()
	if subIDs {
		u.SubID = freeSubRange(t)
		r := fmt.Sprintf("%d-%d", u.SubID, u.SubID+subIDCount-1)
		if out, err := exec.Command("usermod", "--add-subuids", r, "--add-subgids", r, u.Name).CombinedOutput(); err != nil {
			t.Fatalf("usermod %s: %v\n%s", u.Name, err, out)
		}
	}
	var err error
	if u.UID, u.GID, err = lookupIDs(u.Name); err != nil {
		t.Fatal(err)
	}
	u.RuntimeDir = "/tmp/" + u.Name + "-run"
	if err := os.Mkdir(u.RuntimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(u.RuntimeDir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	if u.Kiln, err = u.copyBinary(kiln); err != nil {
		t.Fatal(err)
	}
	return u
}

// Command runs Kiln with args as the user (exec.Cmd's credentials: uid,
// gid, no supplementary groups), in the user's home, with a clean
// environment.
func (u *User) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(u.Kiln, args...)
	cmd.Dir = u.Home
	cmd.Env = append([]string{
		"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"XDG_RUNTIME_DIR=" + u.RuntimeDir,
	}, u.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}},
	}
	return cmd
}

// copyBinary copies the binary into a directory every user may read.
func (u *User) copyBinary(src string) (string, error) {
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		src = exe
	}
	dir := "/tmp/" + u.Name + "-bin"
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := filepath.Join(dir, "kiln")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

// KillAll kills every process of the user and of its subordinate ids (its
// pause process, container monitors and containers) and waits until they
// are gone.
func (u *User) KillAll() {
	for range 200 {
		left := 0
		for _, pid := range u.processes() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			left++
		}
		if left == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processes are the live processes whose real or effective uid is the
// user's or one of its subordinate uids.
func (u *User) processes() []int {
	var out []int
	for _, pid := range proc.All() {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil || strings.Contains(string(data), "State:\tZ") {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "Uid:" {
				continue
			}
			for _, s := range f[1:3] {
				if id, err := strconv.Atoi(s); err == nil && u.owns(id) {
					out = append(out, pid)
					break
				}
			}
		}
	}
	return out
}

func (u *User) owns(id int) bool {
	return id == u.UID || (u.SubID > 0 && id >= u.SubID && id < u.SubID+subIDCount)
}

func (u *User) remove() {
	u.KillAll()
	os.RemoveAll(u.RuntimeDir)
	os.RemoveAll("/tmp/kiln-run-" + strconv.Itoa(u.UID))
	if u.Kiln != "" {
		os.RemoveAll(filepath.Dir(u.Kiln))
	}
	if u.SubID > 0 {
		r := fmt.Sprintf("%d-%d", u.SubID, u.SubID+subIDCount-1)
		_ = exec.Command("usermod", "--del-subuids", r, "--del-subgids", r, u.Name).Run()
	}
	_ = exec.Command("userdel", "--remove", "--force", u.Name).Run()
	os.RemoveAll(u.Home)
}

// freeSubRange picks a subordinate range start, above every range of
// /etc/subuid and /etc/subgid's users below 2^31, at random so that tests
// running at once do not choose the same one.
func freeSubRange(t testing.TB) int {
	t.Helper()
	type span struct{ lo, hi int }
	var used []span
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			p := strings.Split(strings.TrimSpace(sc.Text()), ":")
			if len(p) != 3 {
				continue
			}
			lo, err1 := strconv.Atoi(p[1])
			n, err2 := strconv.Atoi(p[2])
			if err1 == nil && err2 == nil {
				used = append(used, span{lo, lo + n})
			}
		}
		file.Close()
	}
	for range 1000 {
		lo := (16 + rand.IntN(30000)) * subIDCount // 1M .. ~2G
		free := true
		for _, s := range used {
			if lo < s.hi && s.lo < lo+subIDCount {
				free = false
				break
			}
		}
		if free {
			return lo
		}
	}
	t.Fatal("no free subordinate id range")
	return 0
}

func lookupIDs(name string) (uid, gid int, err error) {
	out, err := exec.Command("id", "-u", name).Output()
	if err == nil {
		uid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	if err == nil {
		out, err = exec.Command("id", "-g", name).Output()
	}
	if err == nil {
		gid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("id %s: %w", name, err)
	}
	return uid, gid, nil
}
