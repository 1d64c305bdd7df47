package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// plain prints buildx's "#N" text: a vertex's name when it starts
// ("#5 [build 2/4] RUN make"), each line of its output with the seconds
// since it started ("#5 0.123 compiling"), and how it ended ("#5 DONE 1.2s",
// "#5 CACHED", "#5 ERROR: …"). When another vertex prints in between, the
// name is printed again, so output of parallel stages stays attributable.
type plain struct {
	mu       sync.Mutex
	w        io.Writer
	vs       map[digest.Digest]*plainVertex
	next     int
	current  digest.Digest
	printed  bool
	warnings []*VertexWarning
}

type plainVertex struct {
	index   int
	name    string
	started time.Time
	out     [3]lines // by stream
	done    bool
}

func newPlain(w io.Writer) *plain {
	return &plain{w: w, vs: map[digest.Digest]*plainVertex{}}
}

func (p *plain) Write(s *SolveStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, v := range s.Vertexes {
		pv := p.vertex(v.Digest)
		if v.Name != "" {
			pv.name = v.Name
		}
		if v.Started != nil && pv.started.IsZero() {
			pv.started = *v.Started
			if v.Completed == nil {
				p.switchTo(&b, v.Digest)
			}
		}
	}
	for _, l := range s.Logs {
		pv := p.vertex(l.Vertex)
		for _, line := range pv.out[stream(l.Stream)].add(l.Data) {
			p.switchTo(&b, l.Vertex)
			fmt.Fprintf(&b, "#%d %.3f %s\n", pv.index, sinceStart(pv, l.Timestamp), line)
		}
	}
	for _, st := range s.Statuses {
		if st.Completed == nil {
			continue
		}
		pv := p.vertex(st.Vertex)
		p.switchTo(&b, st.Vertex)
		tm := ""
		if st.Started != nil {
			if d := st.Completed.Sub(*st.Started).Seconds(); d > 0.01 {
				tm = fmt.Sprintf(" %.1fs", d)
			}
		}
		fmt.Fprintf(&b, "#%d %s%s done\n", pv.index, st.ID, tm)
	}
	for _, v := range s.Vertexes {
		if v.Completed == nil {
			continue
		}
		pv := p.vertex(v.Digest)
		if pv.done {
			continue
		}
		pv.done = true
		for i := range pv.out {
			if line, ok := pv.out[i].flush(); ok {
				p.switchTo(&b, v.Digest)
				fmt.Fprintf(&b, "#%d %.3f %s\n", pv.index, sinceStart(pv, *v.Completed), line)
			}
		}
		p.switchTo(&b, v.Digest)
		switch {
		case v.Error != "":
			fmt.Fprintf(&b, "#%d ERROR: %s\n", pv.index, v.Error)
		case v.Cached:
			fmt.Fprintf(&b, "#%d CACHED\n", pv.index)
		default:
			d := 0.0
			if v.Started != nil {
				d = v.Completed.Sub(*v.Started).Seconds()
			}
			fmt.Fprintf(&b, "#%d DONE %.1fs\n", pv.index, d)
		}
		p.current = ""
	}
	p.warnings = append(p.warnings, s.Warnings...)
	io.WriteString(p.w, b.String())
}

func (p *plain) vertex(d digest.Digest) *plainVertex {
	pv, ok := p.vs[d]
	if !ok {
		p.next++
		pv = &plainVertex{index: p.next}
		p.vs[d] = pv
	}
	return pv
}

// switchTo prints d's name unless d is the vertex printed last.
func (p *plain) switchTo(b *strings.Builder, d digest.Digest) {
	if p.current == d {
		return
	}
	if p.printed {
		b.WriteString("\n")
	}
	p.printed = true
	p.current = d
	pv := p.vs[d]
	fmt.Fprintf(b, "#%d %s\n", pv.index, pv.name)
}

func (p *plain) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	writeWarnings(p.w, p.warnings)
	return nil
}

func sinceStart(pv *plainVertex, t time.Time) float64 {
	if pv.started.IsZero() || t.Before(pv.started) {
		return 0
	}
	return t.Sub(pv.started).Seconds()
}

// stream is a log's stream as an index: 1 stdout, 2 stderr, 0 anything else.
func stream(s int) int {
	if s == 1 || s == 2 {
		return s
	}
	return 0
}
