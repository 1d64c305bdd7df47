package layer

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// hashWriter is a digestWriter that hashes (and forwards to w) in a second
// goroutine: the producer walks the tree and reads files on one core while
// sha256 runs on the other. What Write is given is copied into one of a few
// large buffers, so memory stays bounded (hashBuffers × hashBufferSize)
// whatever the layer's size. Close waits for the last buffer and returns
// the first error of w.
type hashWriter struct {
	full   chan []byte // filled buffers, in order
	free   chan []byte // buffers the hasher is done with
	done   chan struct{}
	cur    []byte
	err    error // set by the hasher before failed
	failed atomic.Bool
	h      hash.Hash
	n      int64
	w      io.Writer
	close  bool
	made   int // buffers allocated: one at a time, when none is free
}

const (
	hashBuffers    = 4
	hashBufferSize = 1 << 20
)

func newHashWriter(w io.Writer) *hashWriter {
	hw := &hashWriter{
		full: make(chan []byte, hashBuffers),
		free: make(chan []byte, hashBuffers),
		done: make(chan struct{}),
		h:    sha256.New(),
		w:    w,
	}
	go hw.run()
	return hw
}

func (hw *hashWriter) run() {
	defer close(hw.done)
	for b := range hw.full {
		if hw.err == nil {
			if _, err := hw.w.Write(b); err != nil {
				hw.err = err
				hw.failed.Store(true)
			}
			hw.h.Write(b)
		}
		hw.free <- b[:0]
	}
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n := len(p)
	if hw.failed.Load() {
		return 0, hw.err
	}
	for len(p) > 0 {
		if hw.cur == nil {
			hw.cur = hw.buffer()
		}
		m := copy(hw.cur[len(hw.cur):cap(hw.cur)], p)
		hw.cur = hw.cur[:len(hw.cur)+m]
		p = p[m:]
		hw.n += int64(m)
		if len(hw.cur) == cap(hw.cur) {
			hw.full <- hw.cur
			hw.cur = nil
		}
	}
	return n, nil
}

// buffer is a free buffer, made when none is and fewer than hashBuffers
// exist: a small layer (a RUN step's few files) costs one small buffer,
// not hashBuffers large ones, each zeroed.
func (hw *hashWriter) buffer() []byte {
	select {
	case b := <-hw.free:
		return b
	default:
	}
	if hw.made < hashBuffers {
		hw.made++
		if hw.made == 1 {
			return make([]byte, 0, smallBufferSize)
		}
		return make([]byte, 0, hashBufferSize)
	}
	return <-hw.free
}

// Close hands over the last buffer and waits for the hasher.
func (hw *hashWriter) Close() error {
	if !hw.close {
		hw.close = true
		if len(hw.cur) > 0 {
			hw.full <- hw.cur
			hw.cur = nil
		}
		close(hw.full)
	}
	<-hw.done
	return hw.err
}

// digest is the sha256 of everything written; valid after Close.
func (hw *hashWriter) digest() digest.Digest {
	return digest.NewDigest(digest.SHA256, hw.h)
}
