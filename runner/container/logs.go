package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// logEntry is one line of Docker's json-file log format.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLogLine is where a line without a newline is cut, as Docker does.
const maxLogLine = 16 << 10

// logWriter appends entries to the log file; both streams share it.
type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func (l *logWriter) write(stream string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
	if err != nil {
		return
	}
	l.buf = append(append(l.buf[:0], data...), '\n')
	_, _ = l.f.Write(l.buf)
}

// pump copies the container's stream r into the log, line by line, and
// (while it accepts writes) to the attached client's w.
func (l *logWriter) pump(stream string, r io.Reader, w io.Writer) {
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if w != nil {
				if _, werr := w.Write(chunk); werr != nil {
					w = nil // the client went away; the log goes on
				}
			}
			for len(chunk) > 0 {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					pending = append(pending, chunk...)
					for len(pending) >= maxLogLine {
						l.write(stream, pending[:maxLogLine])
						pending = append(pending[:0], pending[maxLogLine:]...)
					}
					break
				}
				if len(pending) > 0 {
					pending = append(pending, chunk[:i+1]...)
					l.write(stream, pending)
					pending = pending[:0]
				} else {
					l.write(stream, chunk[:i+1])
				}
				chunk = chunk[i+1:]
			}
		}
		if err != nil {
			if len(pending) > 0 {
				l.write(stream, pending)
			}
			return
		}
	}
}

// LogOptions select what Logs prints.
type LogOptions struct {
	Follow     bool
	Tail       int // last N lines; < 0 for all
	Timestamps bool
	Since      time.Time
}

// Logs writes the container's log to stdout and stderr, each line to the
// stream it came from. With Follow it keeps going until the container is
// no longer running (or stop is closed).
func (c *Container) Logs(stdout, stderr io.Writer, o LogOptions, stop <-chan struct{}) error {
	f, err := os.Open(c.LogPath())
	if errors.Is(err, os.ErrNotExist) {
		if !o.Follow {
			return nil
		}
		for {
			if f, err = os.Open(c.LogPath()); err == nil {
				break
			}
			if c.Refresh() != nil || !c.State.Running {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	} else if err != nil {
		return err
	}
	defer f.Close()
	print := func(line []byte) error {
		var e logEntry
		if json.Unmarshal(line, &e) != nil {
			return nil
		}
		if !o.Since.IsZero() && e.Time.Before(o.Since) {
			return nil
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			if _, err := io.WriteString(w, e.Time.Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, e.Log)
		return err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	if o.Tail >= 0 {
		ring := make([][]byte, 0, min(o.Tail, 4096))
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' && o.Tail > 0 {
				if len(ring) == o.Tail {
					ring = append(ring[:0], ring[1:]...)
				}
				ring = append(ring, line)
			}
			if err != nil {
				if len(line) > 0 {
					// a partial last line: read again when following
					r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(line), f), 64<<10)
				}
				break
			}
		}
		for _, l := range ring {
			if err := print(l); err != nil {
				return err
			}
		}
	}
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			if err := print(partial); err != nil {
				return err
			}
			partial = partial[:0]
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !o.Follow {
			return nil
		}
		running := c.Refresh() == nil && (c.State.Running || c.State.Restarting)
		if !running {
			// One more pass: the monitor writes the last lines before it
			// records the exit.
			if _, err := r.Peek(1); err != nil {
				return nil
			}
			continue
		}
		select {
		case <-stop:
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}
