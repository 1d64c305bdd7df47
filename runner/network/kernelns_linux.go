package network

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
)

// The kernel state of kiln's networks (bridges, host ends of veth pairs,
// addresses, routes, firewall rules) lives in one network namespace: the
// host's under root. Rootless kiln cannot change the host's, so it keeps
// that state in a network namespace of its own, one per user as Docker's
// and podman's rootless modes do, owned by the user's kiln user namespace
// and pinned by a bind mount at RuntimePath("netns") in the mount namespace
// every rootless kiln process shares. Everything else is the same: the
// same bridges, rules and addresses, made from an OS thread that joined
// that namespace (a firewall tool exec'd from it is born there too).
//
// The rootless namespace reaches the outside through slirp4netns, a
// user-mode network stack: a tap device whose traffic it turns into the
// user's own sockets on the host, with the host's loopback out of reach
// (--disable-host-loopback), as a container under root cannot reach the
// host's 127.0.0.1 either. It runs detached, its pid in
// RuntimePath("slirp4netns.pid"); whoever needs the namespace and finds it
// dead starts it again. Published ports need nothing of it: the userland
// proxy listens on the host and dials from a socket made in the rootless
// namespace (see Proxy).
//
// slirp4netns rather than pasta: Debian's pasta (a 2023 snapshot) gives
// the namespace the host's own address, which makes the host's real
// address unreachable from containers once the gateway mapping to the
// host's loopback is off (--no-map-gw), and it took ten times as long to
// start here (532 ms against 55 ms).

// stackMTU is the tap device's MTU, podman's for slirp4netns: large frames
// cost the user-mode stack less per byte.
const stackMTU = 65520

// stackName is the user-mode network stack's program.
const stackName = "slirp4netns"

// kernelNS opens the network namespace kiln's kernel state lives in: nil
// (this process's own, the host's) under root; rootless, the user's
// rootless network namespace, made and connected on first need.
func kernelNS() (*os.File, error) {
	if !rootless.Active() {
		return nil, nil
	}
	return rootlessNS()
}

// inKernelNS runs fn on an OS thread in the namespace of kiln's kernel
// state (see kernelNS).
func inKernelNS(fn func() error) error {
	ns, err := kernelNS()
	if err != nil {
		return err
	}
	if ns == nil {
		return fn()
	}
	defer ns.Close()
	return inNS(ns, fn)
}

// inExistingKernelNS is inKernelNS for taking state down: rootless, when
// the rootless namespace is gone (and its state with it) there is nothing
// to do, and the user-mode stack is not restarted for it.
func inExistingKernelNS(fn func() error) error {
	if !rootless.Active() {
		return fn()
	}
	ns, err := openPinnedNS(rootless.RuntimePath("netns"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNS(ns, fn)
}

// inNS runs fn on an OS thread of its own in the network namespace ns:
// sockets fn makes and processes it starts are born there. The thread is
// not put back (rootless kiln cannot join the host's namespace again): it
// ends with fn.
func inNS(ns *os.File, fn func() error) error {
	return runner.OnThrowawayThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join network namespace: %w", err)
		}
		return fn()
	})
}

// dialIn dials addr from a socket made in ns (the host's when nil).
func dialIn(ns *os.File, dial func() (net.Conn, error)) (c net.Conn, err error) {
	if ns == nil {
		return dial()
	}
	err = inNS(ns, func() error {
		c, err = dial()
		return err
	})
	return c, err
}

// rootlessNS opens the user's rootless network namespace, made when
// missing, with its user-mode stack started when not running.
func rootlessNS() (*os.File, error) {
	unlock, err := flock(rootless.RuntimePath("netns.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	path := rootless.RuntimePath("netns")
	ns, err := openPinnedNS(path)
	if err != nil {
		if ns, err = pinNewNS(path); err != nil {
			return nil, fmt.Errorf("create the rootless network namespace: %w", err)
		}
	}
	if !stackRunning() {
		if err := startStack(path); err != nil {
			ns.Close()
			return nil, err
		}
	}
	return ns, nil
}

// openPinnedNS opens path if a network namespace is bind-mounted there.
func openPinnedNS(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil || st.Type != unix.NSFS_MAGIC {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// pinNewNS makes a network namespace with lo up and forwarding on, and
// bind-mounts it at path.
func pinNewNS(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	err = runner.OnThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("bring lo up: %w", err)
		}
		if err := enableForwarding(); err != nil {
			return err
		}
		return unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	})
	if err != nil {
		return nil, err
	}
	return openPinnedNS(path)
}

func stackPidPath() string { return rootless.RuntimePath(stackName + ".pid") }

// stackRunning reports whether the recorded user-mode stack process lives.
func stackRunning() bool {
	b, err := os.ReadFile(stackPidPath())
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": a zombie is as good as dead.
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || len(s) < end+3 {
		return false
	}
	return s[open+1:end] == stackName && s[end+2] != 'Z'
}

// startStack starts slirp4netns on the namespace pinned at path, detached
// (its own session, nothing inherited but its ready pipe, the log as
// stderr), and returns once it reports the tap device configured.
func startStack(path string) error {
	bin, err := lookBin(stackName)
	if err != nil {
		return fmt.Errorf("rootless networking needs %s (Debian package %s): not installed", stackName, stackName)
	}
	if err := sandboxMountPoints(); err != nil {
		return fmt.Errorf("start %s: %w", stackName, err)
	}
	logPath := rootless.RuntimePath(stackName + ".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("start %s: %w", stackName, err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", stackName, err)
	}
	defer readyR.Close()
	// Descriptors this process inherited without close-on-exec get it.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		readyW.Close()
		return fmt.Errorf("start %s: %w", stackName, err)
	}
	cmd := exec.Command(bin, "--configure", "--mtu="+strconv.Itoa(stackMTU), "--disable-host-loopback",
		"--enable-sandbox", "--enable-seccomp", "--netns-type=path", "--ready-fd=3", path, "tap0")
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stderr, cmd.Stdout = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", stackName, err)
	}
	ready, _ := io.ReadAll(readyR) // "1", then EOF when it closes the fd or dies
	if !bytes.Equal(ready, []byte("1")) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("start %s: %s", stackName, stackFailure(logPath))
	}
	go cmd.Wait() // reap it if this process outlives it
	if err := writeFileAtomic(stackPidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n")); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("record %s: %w", stackName, err)
	}
	return nil
}

// sandboxMountPoints makes /etc and /run mount points in rootless kiln's
// mount namespace when they are not (inside a container they are often
// plain directories): slirp4netns's --enable-sandbox makes them slave
// mounts before it pivots into a root holding only them, which fails on a
// directory that is not a mount point. A bind of each onto itself is
// invisible outside the namespace and changes nothing seen through it.
func sandboxMountPoints() error {
	for _, dir := range []string{"/etc", "/run"} {
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("%s is missing, and the sandbox of slirp4netns mounts it (a container's image without %s? add the directory)", dir, dir)
			}
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 || stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			continue // a mount point already (or a kernel that cannot say: leave it)
		}
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s a mount point for the network's sandbox: %w", dir, err)
		}
	}
	return nil
}

// stackFailure is the last line slirp4netns logged that says what failed
// (not a warning it prints on every start).
func stackFailure(logPath string) string {
	b, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "child failed") && !strings.HasPrefix(l, "WARNING:") {
			if strings.Contains(l, "/dev/net/tun") {
				l += " (the tun device must be usable by every user, mode 0666, as Debian's udev rules make it)"
			}
			return l
		}
	}
	return "it exited before its network was ready"
}

// CheckPublishable refuses, for rootless kiln, host ports that an ordinary
// user cannot bind (below net.ipv4.ip_unprivileged_port_start), before
// anything of a container is made.
func CheckPublishable(ports PortMap) error {
	if !rootless.Active() {
		return nil
	}
	start := unprivilegedPortStart()
	for _, key := range SortedPorts(ports) {
		for _, b := range ports[key] {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 && p < start {
				return lowPortError(p, start)
			}
		}
	}
	return nil
}

func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

func lowPortError(port, start int) error {
	return fmt.Errorf("publish host port %d: rootless kiln cannot bind ports below %d (net.ipv4.ip_unprivileged_port_start); "+
		"as root, run 'sysctl net.ipv4.ip_unprivileged_port_start=%d' or publish a higher port", port, start, port)
}
