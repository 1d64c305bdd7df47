package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The attach protocol between a client (run, start -a, attach, exec) and a
// monitor: frames of one type byte, a big-endian uint32 payload length and
// the payload, both ways over one stream socket.
const (
	frameStdin    = 'i' // client: bytes for the process's stdin
	frameStdinEOF = 'I' // client: its stdin ended
	frameResize   = 'r' // client: its terminal's size, uint16 rows then uint16 columns
	frameStdout   = 'o' // monitor: the process's stdout (its terminal, with a TTY)
	frameStderr   = 'e' // monitor: the process's stderr
	frameExit     = 'x' // monitor: the process exited; payload: int32 exit code
)

// maxFrame bounds a frame's payload: anything longer is a broken peer.
const maxFrame = 1 << 20

var errBadFrame = errors.New("bad attach frame")

// frameWriter writes frames; it is safe for concurrent use.
type frameWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (fw *frameWriter) write(typ byte, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		n := min(len(p), maxFrame)
		fw.buf = append(fw.buf[:0], typ, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(fw.buf[1:], uint32(n))
		fw.buf = append(fw.buf, p[:n]...)
		if _, err := fw.w.Write(fw.buf); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

func (fw *frameWriter) exit(code int) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return fw.write(frameExit, b[:])
}

func (fw *frameWriter) resize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return fw.write(frameResize, b[:])
}

// frameReader reads frames; the payload is valid until the next read.
type frameReader struct {
	r   io.Reader
	buf []byte
}

func (fr *frameReader) read() (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", errBadFrame, n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], p, nil
}

// parseResize and parseExit decode those frames' payloads.
func parseResize(p []byte) (rows, cols uint16, ok bool) {
	if len(p) != 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), true
}

func parseExit(p []byte) (int, bool) {
	if len(p) != 4 {
		return 0, false
	}
	return int(int32(binary.BigEndian.Uint32(p))), true
}
