package progress

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
)

// tailLines is how many lines of a running step's output the tty shows.
const tailLines = 6

// tty is buildx's live display, redrawn in place: the build's elapsed time
// on top, a line per step (finished ones collapsed to one line with CACHED
// or their duration) and under each running step the last lines of its
// output. Every frame is cut to the terminal's width and height as they
// are when it is drawn, and the frame before is erased by the rows it
// takes at that width, so a resize leaves no debris.
type tty struct {
	mu       sync.Mutex
	f        *os.File
	start    time.Time
	order    []digest.Digest
	vs       map[digest.Digest]*ttyVertex
	warnings []*VertexWarning
	last     []string // the lines of the frame on screen
	changed  bool
	stop     chan struct{}
	stopped  chan struct{}
}

type ttyVertex struct {
	name               string
	started, completed *time.Time
	cached             bool
	err                string
	out                [3]lines
	tail               []string
	statuses           []*VertexStatus
}

func newTTY(f *os.File) *tty {
	t := &tty{f: f, start: time.Now(), vs: map[digest.Digest]*ttyVertex{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go t.loop()
	return t
}

func (t *tty) Write(s *SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.changed = true
	for _, v := range s.Vertexes {
		tv := t.vertex(v.Digest)
		if v.Name != "" {
			tv.name = v.Name
		}
		if v.Started != nil {
			tv.started = v.Started
		}
		if v.Completed != nil {
			tv.completed = v.Completed
			tv.cached, tv.err = v.Cached, v.Error
			for i := range tv.out {
				if l, ok := tv.out[i].flush(); ok {
					tv.addTail(l)
				}
			}
		}
	}
	for _, l := range s.Logs {
		tv := t.vertex(l.Vertex)
		for _, line := range tv.out[stream(l.Stream)].add(l.Data) {
			tv.addTail(line)
		}
	}
	for _, st := range s.Statuses {
		tv := t.vertex(st.Vertex)
		replaced := false
		for i, old := range tv.statuses {
			if old.ID == st.ID {
				tv.statuses[i], replaced = st, true
			}
		}
		if !replaced {
			tv.statuses = append(tv.statuses, st)
		}
	}
	t.warnings = append(t.warnings, s.Warnings...)
}

func (t *tty) vertex(d digest.Digest) *ttyVertex {
	tv, ok := t.vs[d]
	if !ok {
		tv = &ttyVertex{}
		t.vs[d] = tv
		t.order = append(t.order, d)
	}
	return tv
}

func (tv *ttyVertex) addTail(line string) {
	tv.tail = append(tv.tail, line)
	if len(tv.tail) > tailLines {
		tv.tail = tv.tail[len(tv.tail)-tailLines:]
	}
}

func (t *tty) loop() {
	defer close(t.stopped)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			t.draw(false)
			t.mu.Unlock()
		}
	}
}

func (t *tty) Close() error {
	close(t.stop)
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draw(true)
	var b strings.Builder
	writeWarnings(&b, t.warnings)
	_, err := t.f.WriteString(b.String())
	return err
}

// draw replaces the frame on screen with the current one.
func (t *tty) draw(final bool) {
	rows, cols, ok := termSize(t.f)
	if !ok {
		rows, cols = 24, 80
	}
	frame := t.frame(cols, final)
	// Keep the header and the newest lines when the frame is taller than the terminal.
	if rows > 2 && len(frame) > rows-1 {
		frame = append(frame[:1:1], frame[len(frame)-(rows-2):]...)
	}
	var b strings.Builder
	if up := rowsAt(t.last, cols); up > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", up)
	}
	b.WriteString("\r")
	for _, l := range frame {
		b.WriteString(l)
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	t.f.WriteString(b.String())
	t.last = frame
	t.changed = false
}

// rowsAt is how many terminal rows lines take at width cols: a line drawn
// on a wider terminal wraps when the terminal narrows and reflows it.
func rowsAt(lines []string, cols int) int {
	n := 0
	for _, l := range lines {
		w := utf8.RuneCountInString(l)
		n += max(1, (w+cols-1)/cols)
	}
	return n
}

func (t *tty) frame(cols int, final bool) []string {
	now := time.Now()
	width := max(cols-1, 10) // never the last column: no pending wrap
	done, failed := 0, false
	for _, d := range t.order {
		tv := t.vs[d]
		if tv.completed != nil {
			done++
		}
		failed = failed || tv.err != ""
	}
	head := fmt.Sprintf("[+] Building %.1fs (%d/%d)", now.Sub(t.start).Seconds(), done, len(t.order))
	if final && !failed {
		head += " FINISHED"
	}
	out := []string{fit(head, "", width)}
	for _, d := range t.order {
		tv := t.vs[d]
		if tv.started == nil && tv.completed == nil {
			continue
		}
		name := tv.name
		switch {
		case tv.err != "":
			name = "ERROR " + name
		case tv.cached:
			name = "CACHED " + name
		}
		out = append(out, fit(" => "+name, duration(tv, now), width))
		for _, st := range tv.statuses {
			tm := ""
			if st.Started != nil {
				end := now
				if st.Completed != nil {
					end = *st.Completed
				}
				tm = fmt.Sprintf("%.1fs", end.Sub(*st.Started).Seconds())
			}
			out = append(out, fit(" => => "+st.ID, tm, width))
		}
		if tv.completed == nil || tv.err != "" {
			for _, l := range tv.tail {
				out = append(out, fit(" => => # "+l, "", width))
			}
			for i := range tv.out {
				if l := tv.out[i].partial; len(l) > 0 && tv.completed == nil {
					out = append(out, fit(" => => # "+string(l), "", width))
				}
			}
		}
	}
	return out
}

func duration(tv *ttyVertex, now time.Time) string {
	if tv.cached || tv.started == nil {
		return "0.0s"
	}
	end := now
	if tv.completed != nil {
		end = *tv.completed
	}
	return fmt.Sprintf("%.1fs", end.Sub(*tv.started).Seconds())
}

// fit makes left, then right aligned to the right edge, exactly width
// columns: left is cut when both do not fit. Control characters (an escape
// sequence a step printed) become spaces: they would move the cursor.
func fit(left, right string, width int) string {
	left = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, left)
	rw := utf8.RuneCountInString(right)
	room := width - rw - 1
	if rw == 0 {
		room = width
	}
	if room < 0 {
		room = 0
	}
	lr := []rune(left)
	if len(lr) > room {
		lr = lr[:room]
	}
	s := string(lr)
	if rw == 0 {
		return s
	}
	return s + strings.Repeat(" ", width-len(lr)-rw) + right
}
