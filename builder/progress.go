package builder

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/progress"
)

// errorLogLines is how many of a failed step's last output lines its error
// repeats, as BuildKit's.
const errorLogLines = 10

// reporter turns the build's steps into progress updates: each step is a
// vertex with an id of its own, so output of parallel stages stays
// attributable.
type reporter struct {
	w progress.Writer
	// prefix starts every vertex name: the platform of one build of a
	// multi-platform build ("[linux/arm64] ").
	prefix string
}

// vertex is one step being reported. Its output writers may be used from
// the goroutines that copy a sandbox's stdout and stderr.
type vertex struct {
	r       *reporter
	digest  digest.Digest
	name    string
	started time.Time
	mu      sync.Mutex
	out     [3][]byte // unfinished line, by stream
	tail    []string  // last lines, as "0.123 text"
}

// start reports a vertex named name starting. key tells apart vertices
// that could have the same name (the same step text in two stages).
func (r *reporter) start(key, name string, inputs ...digest.Digest) *vertex {
	return r.startAt(time.Now(), key, name, inputs...)
}

// startAt reports a vertex that started at now.
func (r *reporter) startAt(now time.Time, key, name string, inputs ...digest.Digest) *vertex {
	name = r.prefix + name
	v := &vertex{r: r, digest: digest.FromString(key + "\x00" + name), name: name, started: now}
	r.w.Write(&progress.SolveStatus{Vertexes: []*progress.Vertex{{
		Digest: v.digest, Inputs: inputs, Name: name, Started: &now,
	}}})
	return v
}

// done reports the vertex finished: cached, failed with err, or done.
func (v *vertex) done(cached bool, err error) {
	if v == nil {
		return
	}
	now := time.Now()
	pv := &progress.Vertex{Digest: v.digest, Name: v.name, Started: &v.started, Completed: &now, Cached: cached}
	if err != nil {
		pv.Error = err.Error()
	}
	v.mu.Lock()
	for i := range v.out {
		if len(v.out[i]) > 0 {
			v.keep(string(v.out[i]), now)
			v.out[i] = nil
		}
	}
	v.mu.Unlock()
	v.r.w.Write(&progress.SolveStatus{Vertexes: []*progress.Vertex{pv}})
}

// status reports a finished piece of the vertex's work ("writing image sha256:…").
func (v *vertex) status(id string, started time.Time) {
	now := time.Now()
	v.r.w.Write(&progress.SolveStatus{Statuses: []*progress.VertexStatus{{
		ID: id, Vertex: v.digest, Timestamp: now, Started: &started, Completed: &now,
	}}})
}

// logf reports a line of the builder's own about the vertex.
func (v *vertex) logf(format string, args ...any) {
	v.log(1, []byte(fmt.Sprintf(format+"\n", args...)))
}

// log reports output of the vertex on stream (1 stdout, 2 stderr) and
// keeps its last lines for an error.
func (v *vertex) log(stream int, p []byte) {
	if v == nil || len(p) == 0 {
		return
	}
	now := time.Now()
	v.mu.Lock()
	s := &v.out[stream%3]
	for _, c := range p {
		if c == '\n' {
			v.keep(string(*s), now)
			*s = (*s)[:0]
			continue
		}
		*s = append(*s, c)
	}
	v.mu.Unlock()
	v.r.w.Write(&progress.SolveStatus{Logs: []*progress.VertexLog{{
		Vertex: v.digest, Stream: stream, Data: append([]byte(nil), p...), Timestamp: now,
	}}})
}

func (v *vertex) keep(line string, at time.Time) {
	v.tail = append(v.tail, fmt.Sprintf("%.3f %s", at.Sub(v.started).Seconds(), line))
	if len(v.tail) > errorLogLines {
		v.tail = v.tail[len(v.tail)-errorLogLines:]
	}
}

// lastLines are the last lines the vertex printed.
func (v *vertex) lastLines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tail...)
}

// stream is a writer for output of the vertex on stream n.
func (v *vertex) stream(n int) io.Writer { return streamWriter{v, n} }

type streamWriter struct {
	v *vertex
	n int
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.v.log(w.n, p)
	return len(p), nil
}

// warn reports a warning of the build (a lint check), not tied to a step.
func (r *reporter) warn(short, url string) {
	r.w.Write(&progress.SolveStatus{Warnings: []*progress.VertexWarning{{Level: 1, Short: []byte(short), URL: url}}})
}
