package runner

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The sandbox's terminal (Spec.Terminal) is made by the init, after
// pivot_root, on the container's own devpts instance (/dev/ptmx is a
// symlink to pts/ptmx, mounted newinstance,ptmxmode=0666): the command sees
// /dev/pts/0 of its own /dev, ttyname works, and nothing of the host's
// devpts is reachable. The master goes back to Start over a unix socket
// with SCM_RIGHTS, as runc's console socket does; opening it from outside
// before pivot_root would need the sandbox's mount namespace, which only
// the init has.

// consoleSocketPair is the socket the master travels on: Start keeps
// parent, the init gets child as consoleFd.
func consoleSocketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), os.NewFile(uintptr(fds[1]), "console"), nil
}

// setupConsole runs in the init after pivot_root, before the user switch:
// it opens a new terminal of the sandbox's devpts, gives its slave to
// uid:gid, sizes it, binds it over /dev/console (as docker and runc do),
// makes it the init's controlling terminal and stdio, and sends the master
// over the console socket sock (then closed).
func setupConsole(sock *os.File, rows, cols uint16, uid, gid int) error {
	defer sock.Close()
	master, slave, err := OpenPty()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	_ = slave.Chown(uid, gid)
	if rows > 0 && cols > 0 {
		if err := SetWinsize(master, rows, cols); err != nil {
			return fmt.Errorf("set terminal size: %w", err)
		}
	}
	if err := bindConsole(slave.Name()); err != nil {
		return err
	}
	// The init is the leader of a new session (Start's setsid): the slave
	// becomes its controlling terminal, then its stdio.
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := range 3 {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("terminal as stdio: %w", err)
		}
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte("pty"), rights, nil, 0); err != nil {
		return fmt.Errorf("send terminal: %w", err)
	}
	return nil
}

// bindConsole bind-mounts the terminal slave (a path of the sandbox's
// devpts) over /dev/console, made as an empty file first.
func bindConsole(slave string) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	f.Close()
	if err := unix.Mount(slave, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over /dev/console: %w", slave, err)
	}
	return nil
}

// receiveConsole reads the terminal master the init sent; EOF (the init
// closed the socket without sending, or died) is an error.
func receiveConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	if n == 0 || oobn == 0 {
		return nil, errors.New("receive terminal: the sandbox sent none")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: bad control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive terminal: bad rights: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "ptmx:"+strconv.Itoa(fds[0])), nil
}
