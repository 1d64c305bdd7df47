package runner

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/kiln-build/kiln/internal/proc"
)

// EnterMountNamespace makes sure the calling process runs in its own private
// mount namespace, so the overlay mounts it makes vanish if it is killed.
// kiln build needs it only on kernels without detached mounts
// (DetachedMountsSupported): elsewhere its mounts are in no mount table.
// When it already does (InPrivateMountNamespace) it returns nil at once.
// Otherwise it re-executes /proc/self/exe with the same arguments and
// environment in a new mount namespace (Go remounts / rprivate there),
// forwards SIGINT, SIGTERM and SIGHUP to it and exits with its exit code
// (128+signal if a signal killed it); it only returns on failure to start.
//
// No marker says "already done": the re-executed process checks the
// namespace it is really in, so nothing in a user's environment can make
// kiln mount on the host's namespace.
func EnterMountNamespace() error {
	private, err := InPrivateMountNamespace()
	if err != nil {
		return fmt.Errorf("enter mount namespace: %w", err)
	}
	if private {
		return nil
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = os.Environ()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}

	// Pdeathsig is tied to the starting thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code, err := proc.RunForwarding(cmd, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err != nil {
		return fmt.Errorf("enter mount namespace: %w", err)
	}
	os.Exit(code)
	return nil
}

// InPrivateMountNamespace reports whether the calling process is the one
// EnterMountNamespace re-executed, as far as the kernel can tell: its
// parent runs the same executable, in another mount namespace (so the
// parent, and whatever else shares the parent's namespace, cannot keep our
// mounts alive), and the root mount propagates nothing to a peer group
// ("shared:" in mountinfo; a slave root is fine: propagation only comes
// in). It reads nothing a user can set, such as an environment variable.
func InPrivateMountNamespace() (bool, error) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, err
	}
	ppid := os.Getppid()
	parent, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", ppid))
	if err != nil || self == parent {
		// The parent is out of sight (another PID namespace) or shares
		// our namespace: nothing proves the namespace is ours.
		return false, nil
	}
	selfExe, err1 := os.Stat("/proc/self/exe")
	parentExe, err2 := os.Stat(fmt.Sprintf("/proc/%d/exe", ppid))
	if err1 != nil || err2 != nil || !os.SameFile(selfExe, parentExe) {
		return false, nil
	}
	shared, err := rootMountShared()
	if err != nil {
		return false, err
	}
	return !shared, nil
}

// rootMountShared reports whether the mount at / (the last one, if several
// are stacked) is in a shared peer group.
func rootMountShared() (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	shared, found := false, false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || fields[4] != "/" {
			continue
		}
		found, shared = true, false
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read mountinfo: %w", err)
	}
	if !found {
		return false, fmt.Errorf("read mountinfo: no mount at /")
	}
	return shared, nil
}
