package container

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// dirWatch reports changes of the files of one directory (inotify).
type dirWatch struct{ fd int }

func watchDir(dir string) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &dirWatch{fd: fd}, nil
}

func (w *dirWatch) Close() error { return unix.Close(w.fd) }

// wait blocks until something changed in the directory, ctx is done
// (its error) or deadline (when not zero) passed (context.DeadlineExceeded).
// Pending notifications are drained.
func (w *dirWatch) wait(ctx context.Context, deadline time.Time) error {
	buf := make([]byte, 4096)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		slice := 200 * time.Millisecond // how soon a cancelled ctx is noticed
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return context.DeadlineExceeded
			}
			slice = min(slice, left)
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(slice.Milliseconds())+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n > 0 {
			for {
				if _, err := unix.Read(w.fd, buf); err != nil {
					break
				}
			}
			return nil
		}
	}
}
