package container

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// Attach connects a client to a container's process (or an exec's). The
// bytes travel through the monitor: it never holds the client's own
// descriptors, so the client's death does not touch the process.
type Attach struct {
	Stdin          io.Reader // nil: no stdin
	Stdout, Stderr io.Writer
	// With a TTY: the terminal's size, then its changes; a closed or nil
	// channel sends no more.
	Rows, Cols uint16
	Resize     <-chan [2]uint16
	// DetachKeys, when not empty, are the keys in Stdin that detach the
	// client (docker only honours them with a TTY).
	DetachKeys []byte
}

// stream runs the client's side of the attach protocol on conn until the
// process exits (its exit code), the monitor goes away (an error), or the
// detach keys were typed (ErrDetached). It closes conn.
func (a *Attach) stream(conn io.ReadWriteCloser) (int, error) {
	fw := &frameWriter{w: conn}
	done := make(chan struct{})
	defer close(done)
	detached := make(chan struct{})
	if a.Rows > 0 && a.Cols > 0 {
		_ = fw.resize(a.Rows, a.Cols)
	}
	if a.Resize != nil {
		go func() {
			for {
				select {
				case ws, ok := <-a.Resize:
					if !ok {
						return
					}
					_ = fw.resize(ws[0], ws[1])
				case <-done:
					return
				}
			}
		}()
	}
	if a.Stdin != nil {
		go func() {
			in := newEscapeProxy(a.Stdin, a.DetachKeys)
			buf := make([]byte, 32<<10)
			for {
				n, err := in.Read(buf)
				if n > 0 && fw.write(frameStdin, buf[:n]) != nil {
					return
				}
				if errors.Is(err, ErrDetached) {
					close(detached)
					conn.Close() // ends the read loop below
					return
				}
				if err != nil {
					_ = fw.write(frameStdinEOF, nil)
					return
				}
			}
		}()
	}
	defer conn.Close()
	stdout, stderr := orDiscard(a.Stdout), orDiscard(a.Stderr)
	fr := &frameReader{r: conn}
	for {
		typ, p, err := fr.read()
		if err != nil {
			select {
			case <-detached:
				return -1, ErrDetached
			default:
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = io.ErrUnexpectedEOF
			}
			return -1, fmt.Errorf("attach: the monitor went away: %w", err)
		}
		switch typ {
		case frameStdout:
			if _, err := stdout.Write(p); err != nil {
				stdout = io.Discard // as docker, the process goes on
			}
		case frameStderr:
			if _, err := stderr.Write(p); err != nil {
				stderr = io.Discard
			}
		case frameExit:
			if code, ok := parseExit(p); ok {
				return code, nil
			}
			return -1, errBadFrame
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Attach attaches a client to the running container's process until it
// exits (its exit code, for every run of a restarting container only the
// current one's) or the client types the detach keys (ErrDetached).
func (c *Container) Attach(a *Attach) (int, error) {
	conn, err := dialAttach(c.Dir)
	if err != nil {
		return -1, fmt.Errorf("attach to container %s: %w", c.ShortID(), ErrNotRunning)
	}
	return a.stream(conn)
}
