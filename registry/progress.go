package registry

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// progress reports the transfer of each layer: a line as each starts and
// ends, or, on a terminal, a bar per layer redrawn in place.
type progress struct {
	w    io.Writer
	term bool

	mu    sync.Mutex
	bars  []*bar
	drawn int // lines drawn by the last redraw
	stop  chan struct{}
	done  chan struct{}
}

// bar is one layer's transfer.
type bar struct {
	p      *progress
	id     string
	total  int64
	n      atomic.Int64
	status string
}

func newProgress(o Options) *progress {
	p := &progress{w: o.Progress, term: o.Terminal && o.Progress != nil}
	if p.w == nil {
		p.w = io.Discard
	}
	if p.term {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.redraw()
			return
		case <-t.C:
			p.redraw()
		}
	}
}

// close draws the final state; the progress must not be used after.
func (p *progress) close() {
	if p.term {
		close(p.stop)
		<-p.done
	}
}

// layer starts reporting on the blob d of size total, with a first status.
func (p *progress) layer(d digest.Digest, total int64, status string) *bar {
	b := &bar{p: p, id: shortID(d), total: total, status: status}
	p.mu.Lock()
	p.bars = append(p.bars, b)
	p.mu.Unlock()
	if !p.term {
		if total > 0 && (status == "downloading" || status == "uploading") {
			fmt.Fprintf(p.w, "%s: %s %s\n", b.id, status, humanSize(total))
		} else {
			fmt.Fprintf(p.w, "%s: %s\n", b.id, status)
		}
	}
	return b
}

// set changes the bar's status; lines mode prints it.
func (b *bar) set(status string) {
	b.p.mu.Lock()
	b.status = status
	b.p.mu.Unlock()
	if !b.p.term {
		fmt.Fprintf(b.p.w, "%s: %s\n", b.id, status)
	}
}

// reader counts what passes through r as the bar's progress.
func (b *bar) reader(r io.Reader) io.Reader { return countingReader{r, &b.n} }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (p *progress) redraw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", p.drawn)
	}
	for _, b := range p.bars {
		sb.WriteString("\x1b[2K")
		sb.WriteString(b.line())
		sb.WriteByte('\n')
	}
	p.drawn = len(p.bars)
	io.WriteString(p.w, sb.String())
}

func (b *bar) line() string {
	if b.status != "downloading" && b.status != "uploading" || b.total <= 0 {
		return b.id + ": " + b.status
	}
	n := min(b.n.Load(), b.total)
	const width = 30
	fill := int(n * width / b.total)
	return fmt.Sprintf("%s: %s [%s%s] %s/%s", b.id, b.status, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), humanSize(n), humanSize(b.total))
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// humanSize formats a byte count as docker does (decimal units).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
