// secprobe reports what a sandbox lets its process do: the security tests
// build it (CGO_ENABLED=0, so it runs in a busybox image) and run it as a
// RUN step and as a container. Each line is "name: value" or
// "name: allowed" / "name: refused (errno)".
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	f, err := os.Open("/proc/self/status")
	if err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "CapEff", "CapBnd", "Seccomp", "NoNewPrivs":
				fmt.Printf("%s: %s\n", k, strings.TrimSpace(v))
			}
		}
		f.Close()
	}
	try := func(name string, fn func() error) {
		if err := fn(); err != nil {
			fmt.Printf("%s: refused (%v)\n", name, err)
		} else {
			fmt.Printf("%s: allowed\n", name)
		}
	}
	// Each namespace change happens in a child, so the next probes run in
	// the sandbox as it was.
	try("unshare-user", func() error { return inChild(unix.CLONE_NEWUSER) })
	try("unshare-mount", func() error { return inChild(unix.CLONE_NEWNS) })
	try("mount", func() error {
		os.MkdirAll("/tmp/secprobe-mnt", 0o755)
		err := unix.Mount("tmpfs", "/tmp/secprobe-mnt", "tmpfs", 0, "")
		if err == nil {
			unix.Unmount("/tmp/secprobe-mnt", unix.MNT_DETACH)
		}
		return err
	})
	try("keyctl", func() error {
		_, err := unix.KeyctlJoinSessionKeyring("secprobe")
		return err
	})
	try("write-proc-sys", func() error {
		return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
	})
	try("write-sys", func() error {
		return os.WriteFile("/sys/kernel/uevent_helper", []byte(""), 0)
	})
	try("open-block-device", func() error {
		// The host's root filesystem's device, made here.
		var st unix.Stat_t
		if err := unix.Stat("/etc/hosts", &st); err != nil {
			return err
		}
		p := "/tmp/secprobe-blk"
		os.Remove(p)
		if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(st.Dev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		defer os.Remove(p)
		fd, err := unix.Open(p, unix.O_RDONLY, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	try("open-kmsg", func() error {
		// A character device outside Docker's default allow list.
		p := "/tmp/secprobe-kmsg"
		os.Remove(p)
		if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		defer os.Remove(p)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	try("clone3", func() error {
		_, _, e := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
		if e == unix.ENOSYS {
			return e
		}
		return nil // EFAULT or EINVAL: the kernel saw the call
	})
	try("net-admin", func() error {
		// Bring lo down and up again: needs CAP_NET_ADMIN in the namespace.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	})
}

// inChild forks a child that unshares flags and reports whether it could.
func inChild(flags uintptr) error {
	pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD)|flags, 0, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	if pid == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	var ws unix.WaitStatus
	_, err := unix.Wait4(int(pid), &ws, 0, nil)
	return err
}
