package container

import (
	"io"
	"os"
	"sync"

	"github.com/kiln-build/kiln/runner"
)

// hub is the monitor's side of the attach protocol: it copies the process's
// output to every attached client, their input to the process's stdin and
// their terminal sizes to its pty.
type hub struct {
	mu        sync.Mutex
	clients   map[*hubClient]bool
	stdin     io.WriteCloser // the process's stdin (a pipe, or the pty master); nil: closed or not open
	stdinOnce bool           // close stdin when the client that gave it ends its input or goes away
	pty       *os.File
	rows      uint16 // the last size asked for, for a pty set later
	cols      uint16
	// ready is closed once the first process is there (or will never be):
	// input that comes earlier waits for it rather than being lost.
	ready     chan struct{}
	readyOnce sync.Once
}

type hubClient struct {
	fw    *frameWriter
	conn  io.ReadWriteCloser
	stdin bool // its input goes to the process
}

func newHub() *hub { return &hub{clients: map[*hubClient]bool{}, ready: make(chan struct{})} }

func (h *hub) setReady() { h.readyOnce.Do(func() { close(h.ready) }) }

// setProcess gives the hub the new process's stdin (nil when it has none;
// the hub closes it) and pty (nil without a TTY; then stdin, if any, is the
// pty, which the hub does not close).
func (h *hub) setProcess(stdin io.WriteCloser, stdinOnce bool, pty *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pty != nil && stdin != nil {
		stdin = nopCloser{stdin}
	}
	h.stdin, h.stdinOnce, h.pty = stdin, stdinOnce, pty
	if pty != nil && h.rows > 0 {
		_ = runner.SetWinsize(pty, h.rows, h.cols)
	}
	h.setReady()
}

// serve attaches conn until it goes away; withStdin lets its input reach
// the process.
func (h *hub) serve(conn io.ReadWriteCloser, withStdin bool) {
	h.serveClient(h.add(conn, withStdin))
}

// add attaches conn at once: from now on it gets the process's output. A
// client that must not miss the first bytes (the one that started the
// process) is added before the process starts, then served.
func (h *hub) add(conn io.ReadWriteCloser, withStdin bool) *hubClient {
	c := &hubClient{fw: &frameWriter{w: conn}, conn: conn, stdin: withStdin}
	h.mu.Lock()
	h.clients[c] = true
	h.mu.Unlock()
	return c
}

// serveClient reads an added client's frames until it goes away.
func (h *hub) serveClient(c *hubClient) {
	conn := c.conn
	fr := &frameReader{r: conn}
	for {
		typ, p, err := fr.read()
		if err != nil {
			break
		}
		switch typ {
		case frameStdin:
			if c.stdin {
				h.writeStdin(p)
			}
		case frameStdinEOF:
			if c.stdin {
				h.endStdin()
				c.stdin = false
			}
		case frameResize:
			if rows, cols, ok := parseResize(p); ok {
				h.resize(rows, cols)
			}
		}
	}
	h.drop(c)
	if c.stdin {
		h.endStdin()
	}
}

func (h *hub) writeStdin(p []byte) {
	<-h.ready
	h.mu.Lock()
	w := h.stdin
	h.mu.Unlock()
	if w != nil {
		// (Not under the lock: a process that does not read its stdin
		// must not block the output.)
		_, _ = w.Write(p)
	}
}

// endStdin closes the process's stdin when it is StdinOnce's.
func (h *hub) endStdin() {
	<-h.ready
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stdin != nil && h.stdinOnce && h.pty == nil {
		h.stdin.Close()
		h.stdin = nil
	}
}

func (h *hub) resize(rows, cols uint16) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rows, h.cols = rows, cols
	if h.pty != nil && rows > 0 && cols > 0 {
		_ = runner.SetWinsize(h.pty, rows, cols)
	}
}

func (h *hub) drop(c *hubClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[c] {
		delete(h.clients, c)
		c.conn.Close()
	}
}

// output is an io.Writer that sends its bytes to every client as typ frames.
type hubOutput struct {
	h   *hub
	typ byte
}

func (o hubOutput) Write(p []byte) (int, error) {
	o.h.mu.Lock()
	var gone []*hubClient
	for c := range o.h.clients {
		if err := c.fw.write(o.typ, p); err != nil {
			gone = append(gone, c)
		}
	}
	o.h.mu.Unlock()
	for _, c := range gone {
		o.h.drop(c)
	}
	return len(p), nil
}

func (h *hub) output(typ byte) io.Writer { return hubOutput{h: h, typ: typ} }

// exit tells every client the process's exit code and lets them go; the
// process's stdin goes too.
func (h *hub) exit(code int) {
	h.setReady()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		_ = c.fw.exit(code)
		c.conn.Close()
		delete(h.clients, c)
	}
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
	}
	h.pty = nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
