package container

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// attachSocket is the name of the monitor's attach socket in the container
// directory.
const attachSocket = "attach.sock"

// socketPath names dir/name through the directory descriptor dirfd, as
// "/proc/self/fd/N/name": a socket's path must fit in 108 bytes, the store
// root's need not.
func socketPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// attachListener is the monitor's listening attach socket.
type attachListener struct {
	*net.UnixListener
	path string
}

// listenAttach listens on the container directory's attach socket.
func listenAttach(dir string) (*attachListener, error) {
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen for attach: %w", err)
	}
	defer unix.Close(dirfd)
	path := filepath.Join(dir, attachSocket)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listen for attach: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socketPath(dirfd, attachSocket), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for attach: %w", err)
	}
	l.SetUnlinkOnClose(false) // (the /proc/self/fd name dies with dirfd)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listen for attach: %w", err)
	}
	return &attachListener{UnixListener: l, path: path}, nil
}

// Close stops listening and removes the socket.
func (l *attachListener) Close() error {
	err := l.UnixListener.Close()
	os.Remove(l.path)
	return err
}

// dialAttach connects to the monitor of the container directory dir.
func dialAttach(dir string) (*net.UnixConn, error) {
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: socketPath(dirfd, attachSocket), Net: "unix"})
}

// socketPair returns a connected pair of stream sockets as files. They are
// non-blocking, so that closing one ends a read of it in another goroutine
// (passing one to a child makes that one blocking again).
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "attach"), os.NewFile(uintptr(fds[1]), "attach"), nil
}

// inheritedSocket turns the descriptor fd a monitor inherited into a file
// whose Close ends a pending read.
func inheritedSocket(fd int, name string) *os.File {
	_ = unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}
