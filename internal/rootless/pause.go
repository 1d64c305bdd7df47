package rootless

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/proc"
)

// The pause process holds the user's kiln user namespace and its mount
// namespace for as long as the user has anything in them, as podman's
// does: containers outlive the kiln command that started them, and later
// commands (exec, stop, a network namespace pinned by a bind mount) must
// be in the same namespaces to reach them. It is this binary, re-executed
// with argv[0] pauseArg0 in new user and mount namespaces.
const pauseArg0 = "kiln-rootless-pause"

// Files of the runtime directory: the pause process ("PID START"), and the
// lock that makes two kiln commands starting at once agree on one.
const (
	pauseFile     = "pause.pid"
	pauseLockFile = "pause.lock"
)

// pauseProc names a process for good: its pid and start time.
type pauseProc struct {
	pid   int
	start uint64
}

func (p pauseProc) String() string { return fmt.Sprintf("%d %d", p.pid, p.start) }

// alive reports whether p still runs (its pid has not been reused).
func (p pauseProc) alive() bool {
	st, ok := proc.StartTime(p.pid)
	return ok && st == p.start
}

// PausePID is the pid of the process holding the user namespace of
// rootless kiln (0 under real root or when there is none): /proc/PID/ns/
// names the user and mount namespaces every rootless kiln process shares.
func PausePID() int {
	if !Active() {
		return 0
	}
	p, ok := readPause(RuntimeDir())
	if !ok {
		return 0
	}
	return p.pid
}

// readPause reads the pause process of the runtime directory rt, if it
// lives.
func readPause(rt string) (pauseProc, bool) {
	data, err := os.ReadFile(filepath.Join(rt, pauseFile))
	if err != nil {
		return pauseProc{}, false
	}
	var p pauseProc
	if _, err := fmt.Sscanf(string(data), "%d %d", &p.pid, &p.start); err != nil || !p.alive() {
		return pauseProc{}, false
	}
	return p, true
}

// ensurePause returns the live pause process of rt, starting one when
// there is none. The lock makes kiln commands started at once end with one.
func ensurePause(rt string, u account) (pauseProc, error) {
	if p, ok := readPause(rt); ok {
		return p, nil
	}
	lock, err := os.OpenFile(filepath.Join(rt, pauseLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return pauseProc{}, fmt.Errorf("lock the user namespace: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return pauseProc{}, fmt.Errorf("lock the user namespace: %w", err)
	}
	if p, ok := readPause(rt); ok {
		return p, nil // another kiln made it while we waited
	}
	p, err := startPause(u)
	if err != nil {
		return pauseProc{}, err
	}
	tmp := filepath.Join(rt, pauseFile+".tmp")
	if err := os.WriteFile(tmp, []byte(p.String()+"\n"), 0o600); err == nil {
		err = os.Rename(tmp, filepath.Join(rt, pauseFile))
	}
	if err != nil {
		_ = unix.Kill(p.pid, unix.SIGKILL)
		return pauseProc{}, fmt.Errorf("record the pause process: %w", err)
	}
	return p, nil
}

// HolderArg0 is argv[0] of the processes that hold the namespaces besides
// the pause process: container monitors.
const HolderArg0 = "kiln-monitor"

// findHolder finds a container monitor of the user uid that lives in a user
// namespace other than this process's: the namespaces of a pause process
// that is gone, which the containers it watches still use.
func findHolder(uid int) (pauseProc, bool) {
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return pauseProc{}, false
	}
	for _, pid := range proc.All() {
		dir := "/proc/" + strconv.Itoa(pid) + "/"
		cmdline, _ := os.ReadFile(dir + "cmdline")
		if arg0, _, _ := bytes.Cut(cmdline, []byte{0}); string(arg0) != HolderArg0 {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil || int(st.Uid) != uid {
			continue
		}
		if ns, err := os.Readlink(dir + "ns/user"); err != nil || ns == self {
			continue
		}
		if start, ok := proc.StartTime(pid); ok {
			return pauseProc{pid: pid, start: start}, true
		}
	}
	return pauseProc{}, false
}

// startPause starts a pause process: in the namespaces a gone pause process
// left to running containers (findHolder), else in new ones (newPause).
func startPause(u account) (pauseProc, error) {
	if h, ok := findHolder(u.uid); ok {
		return pauseIn(h)
	}
	return newPause(u)
}

// pauseIn starts a pause process joined to the namespaces of h.
func pauseIn(h pauseProc) (pauseProc, error) {
	cmd := pauseCommand()
	cmd.Env = []string{envJoin + "=" + h.String()}
	s, err := newPauseSync(cmd)
	if err != nil {
		return pauseProc{}, err
	}
	defer s.close()
	err = cmd.Start()
	s.started()
	if err != nil {
		return pauseProc{}, fmt.Errorf("start the pause process: %w", err)
	}
	return startedPause(cmd, s)
}

// pauseSync are the pipes between kiln and a pause process it starts: the
// pause process says on descriptor 4 that it runs (its constructor has
// joined the namespaces it was to join: only then may kiln name it), and
// waits on descriptor 3 for the go-ahead.
type pauseSync struct{ goR, goW, readyR, readyW *os.File }

func newPauseSync(cmd *exec.Cmd) (*pauseSync, error) {
	s := &pauseSync{}
	var err error
	if s.goR, s.goW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.readyR, s.readyW, err = os.Pipe(); err != nil {
		s.goR.Close()
		s.goW.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{s.goR, s.readyW}
	return s, nil
}

// started closes the pause process's ends, once it has them.
func (s *pauseSync) started() { s.goR.Close(); s.readyW.Close() }

func (s *pauseSync) close() { s.goW.Close(); s.readyR.Close() }

// pauseCommand is this binary as a pause process, in a session of its own.
func pauseCommand() *exec.Cmd {
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{pauseArg0}
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// startedPause waits until the started pause process cmd runs, lets it go
// on, and names it.
func startedPause(cmd *exec.Cmd, s *pauseSync) (pauseProc, error) {
	pid := cmd.Process.Pid
	var b [1]byte
	n, _ := s.readyR.Read(b[:])
	start, ok := proc.StartTime(pid)
	if ok = ok && n == 1; ok {
		_, err := s.goW.Write([]byte{1})
		ok = err == nil
	}
	if !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return pauseProc{}, errors.New("start the user namespace: the pause process died")
	}
	_ = cmd.Process.Release()
	return pauseProc{pid: pid, start: start}, nil
}

// newPause starts a pause process in new user and mount namespaces and
// writes its id maps: newuidmap/newgidmap with the user's subordinate
// ranges, else the user alone (with a warning).
func newPause(u account) (pauseProc, error) {
	uids, gids, warn := userMaps(u)
	cmd := pauseCommand()
	s, err := newPauseSync(cmd)
	if err != nil {
		return pauseProc{}, err
	}
	defer s.close()
	cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS
	err = cmd.Start()
	s.started()
	if err != nil {
		return pauseProc{}, UserNamespaceError(err)
	}
	if err := writeMaps(cmd.Process.Pid, uids, gids); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return pauseProc{}, err
	}
	p, err := startedPause(cmd, s)
	if err == nil && warn != "" {
		fmt.Fprintln(os.Stderr, "kiln: warning:", warn)
	}
	return p, err
}

// userMaps are the uid and gid maps of u's namespace, and the warning to
// give when they map u alone (nil maps then: the single mapping).
func userMaps(u account) (uids, gids []IDRange, warn string) {
	who := u.name
	if who == "" {
		who = "uid " + strconv.Itoa(u.uid)
	}
	subu, erru := readSubIDs("/etc/subuid", u)
	subg, errg := readSubIDs("/etc/subgid", u)
	const single = "kiln maps you alone (files owned by other users cannot be made)"
	switch {
	case erru != nil:
		return nil, nil, fmt.Sprintf("no subordinate uid range for %s in /etc/subuid: %v; %s", who, erru, single)
	case errg != nil:
		return nil, nil, fmt.Sprintf("no subordinate gid range for %s in /etc/subgid: %v; %s", who, errg, single)
	case len(subu) == 0:
		return nil, nil, fmt.Sprintf("no subordinate uid range for %s in /etc/subuid: %s", who, single)
	case len(subg) == 0:
		return nil, nil, fmt.Sprintf("no subordinate gid range for %s in /etc/subgid: %s", who, single)
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, nil, fmt.Sprintf("%s not found (Debian package uidmap): %s", tool, single)
		}
	}
	return idMap(u.uid, subu), idMap(u.gid, subg), ""
}

func readSubIDs(file string, u account) ([]subRange, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSubIDs(f, u.name, u.uid)
}

// writeMaps writes the id maps of pid: through the setuid newuidmap and
// newgidmap for full maps, directly for the single mapping (which needs
// setgroups denied).
func writeMaps(pid int, uids, gids []IDRange) error {
	p := strconv.Itoa(pid)
	if uids == nil {
		proc := "/proc/" + p + "/"
		for _, f := range []struct{ name, data string }{
			{"setgroups", "deny"},
			{"uid_map", fmt.Sprintf("0 %d 1\n", os.Getuid())},
			{"gid_map", fmt.Sprintf("0 %d 1\n", os.Getgid())},
		} {
			if err := os.WriteFile(proc+f.name, []byte(f.data), 0); err != nil {
				return fmt.Errorf("map the user namespace: %w", err)
			}
		}
		return nil
	}
	for _, m := range []struct {
		tool string
		ids  []IDRange
	}{{"newuidmap", uids}, {"newgidmap", gids}} {
		out, err := exec.Command(m.tool, append([]string{p}, mapArgs(m.ids)...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("map the user namespace: %s %s: %v: %s", m.tool, strings.Join(mapArgs(m.ids), " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// IsPause reports whether this process is a pause process (see Pause).
func IsPause() bool { return len(os.Args) > 0 && os.Args[0] == pauseArg0 }

// Pause is the pause process: it says it runs (a byte on descriptor 4),
// waits until its parent has written its id maps (a byte on descriptor 3),
// then sleeps until SIGKILL or SIGTERM.
func Pause() {
	ready := os.NewFile(4, "ready")
	_, _ = ready.Write([]byte{1})
	ready.Close()
	sync := os.NewFile(3, "sync")
	var b [1]byte
	if n, _ := sync.Read(b[:]); n != 1 {
		os.Exit(1) // the parent failed: it kills us anyway
	}
	sync.Close()
	signal.Ignore(unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGWINCH)
	for {
		_ = unix.Pause()
	}
}
