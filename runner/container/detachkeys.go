package container

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultDetachKeys is docker's detach sequence.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached: the client typed the detach keys; the process goes on.
var ErrDetached = errors.New("read escape sequence")

// ParseDetachKeys parses docker's --detach-keys: comma-separated keys, each
// a single character or "ctrl-X" with X one of a-z, @, [, \, ], ^ and _.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = DefaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach keys %q: unknown character %q", s, k)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: unknown character %q", s, k)
		}
	}
	return out, nil
}

// escapeProxy passes r through until the keys are read in a row, then
// fails with ErrDetached. A partial match is held back until the next byte
// shows it is not the sequence, as docker's term.EscapeProxy does.
type escapeProxy struct {
	r        io.Reader
	keys     []byte
	matched  int    // how many of keys the last bytes matched
	ready    []byte // bytes to hand out
	buf      []byte
	detached bool
	err      error // r's error, once ready is drained
}

func newEscapeProxy(r io.Reader, keys []byte) io.Reader {
	if len(keys) == 0 {
		return r
	}
	return &escapeProxy{r: r, keys: keys, buf: make([]byte, 4096)}
}

func (e *escapeProxy) Read(p []byte) (int, error) {
	for len(e.ready) == 0 {
		switch {
		case e.detached:
			return 0, ErrDetached
		case e.err != nil:
			return 0, e.err
		}
		n, err := e.r.Read(e.buf)
		for _, b := range e.buf[:n] {
			if e.detached {
				break
			}
			e.feed(b)
		}
		if err != nil {
			if !e.detached {
				e.ready = append(e.ready, e.keys[:e.matched]...) // a partial sequence at the end is data
				e.matched = 0
			}
			e.err = err
		}
	}
	n := copy(p, e.ready)
	e.ready = e.ready[n:]
	return n, nil
}

func (e *escapeProxy) feed(b byte) {
	if b == e.keys[e.matched] {
		e.matched++
		if e.matched == len(e.keys) {
			e.detached = true
		}
		return
	}
	// Not the sequence after all: what was held back is data, and b may
	// start the sequence again.
	e.ready = append(e.ready, e.keys[:e.matched]...)
	e.matched = 0
	if b == e.keys[0] {
		e.matched = 1
		e.detached = len(e.keys) == 1
		return
	}
	e.ready = append(e.ready, b)
}
