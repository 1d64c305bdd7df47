package builder

import (
	"io"
	"sync"
)

// chunkPipe is an in-memory pipe like io.Pipe whose writer runs ahead of the
// reader by up to depth chunks of chunkSize bytes. A COPY's tar stream is
// made of many small writes (a 512-byte header, a few KiB of file, padding):
// through io.Pipe each one waits for the reader to take it, so the goroutine
// reading the sources and the one creating the files hand over to each other
// thousands of times (a futex wake each). Here they meet once a chunk, and
// the next sources are read while the files before them are written.
//
// The writer side is used by one goroutine, the reader side by another.
type chunkPipe struct {
	full chan []byte // filled chunks, in order; closed by the writer's Close
	free chan []byte // chunks the reader is done with
	stop chan struct{}
	// werr is the writer's close error (io.EOF for a clean end), set before
	// full is closed; rerr is the reader's, set before stop is closed.
	werr, rerr error
	stopOnce   sync.Once

	cur   []byte // the writer's chunk being filled
	chunk []byte // the reader's current chunk
	off   int    // how much of chunk the reader has returned
}

const (
	chunkPipeSize  = 256 << 10
	chunkPipeDepth = 8
)

func newChunkPipe() *chunkPipe {
	p := &chunkPipe{full: make(chan []byte, chunkPipeDepth), free: make(chan []byte, chunkPipeDepth), stop: make(chan struct{})}
	for range chunkPipeDepth {
		p.free <- make([]byte, 0, chunkPipeSize)
	}
	return p
}

// Write copies b into the pipe, blocking only while every chunk is full. It
// fails with the reader's error once the reader has closed.
func (p *chunkPipe) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case c := <-p.free:
				p.cur = c[:0]
			case <-p.stop:
				return n, p.rerr
			}
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur, b, n = p.cur[:len(p.cur)+k], b[k:], n+k
		if len(p.cur) == cap(p.cur) {
			if err := p.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (p *chunkPipe) flush() error {
	if len(p.cur) == 0 {
		return nil
	}
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.stop:
		return p.rerr
	}
}

// CloseWithError ends the writer's side: the reader sees what was written,
// then err (io.EOF when err is nil). It is called once.
func (p *chunkPipe) CloseWithError(err error) {
	if err == nil {
		if err = p.flush(); err == nil {
			err = io.EOF
		}
	}
	p.werr = err
	close(p.full)
}

// Read returns what the writer wrote, in order, then the writer's error.
func (p *chunkPipe) Read(b []byte) (int, error) {
	for p.off == len(p.chunk) {
		if p.chunk != nil {
			p.free <- p.chunk // never blocks: at most depth chunks exist
			p.chunk = nil
		}
		c, ok := <-p.full
		if !ok {
			return 0, p.werr
		}
		p.chunk, p.off = c, 0
	}
	n := copy(b, p.chunk[p.off:])
	p.off += n
	return n, nil
}

// CloseReader ends the reader's side: the writer's next Write that would
// block fails with err (io.ErrClosedPipe when nil). Safe to call more than
// once; the first error counts.
func (p *chunkPipe) CloseReader(err error) {
	p.stopOnce.Do(func() {
		if err == nil {
			err = io.ErrClosedPipe
		}
		p.rerr = err
		close(p.stop)
	})
}
