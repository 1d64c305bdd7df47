package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The event journal: one JSON line per event, appended by the commands and
// monitors that cause them (there is no daemon to ask). A journal larger
// than eventsRotate is moved to events.jsonl.1 by the next append.
const (
	eventsFile   = "events.jsonl"
	eventsRotate = 4 << 20
)

// Event is one entry, in Docker's events JSON shape.
type Event struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// Actor is what the event is about.
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// EventsPath is the store's journal.
func (s *Store) EventsPath() string { return filepath.Join(s.root, eventsFile) }

// storeOf is the store c lives in.
func storeOf(c *Container) *Store { return NewStore(filepath.Dir(filepath.Dir(c.Dir))) }

// logEvent appends a container event (action "start", "die", ...) with the
// container's name, image and labels and extra as attributes. A journal
// that cannot be written loses the event, never the operation.
func (c *Container) logEvent(action string, extra map[string]string) {
	attrs := map[string]string{"image": c.ImageName, "name": c.Name}
	for k, v := range c.Config.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	e := Event{
		Status: action, ID: c.ID, From: c.ImageName, Type: "container", Action: action,
		Actor: Actor{ID: c.ID, Attributes: attrs}, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	if err := storeOf(c).appendEvent(e); err != nil {
		fmt.Fprintln(os.Stderr, "kiln: record event:", err)
	}
}

// appendEvent writes e as one line with one write on an O_APPEND file,
// so that concurrent writers never interleave within a line.
func (s *Store) appendEvent(e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p := s.EventsPath()
	if fi, err := os.Stat(p); err == nil && fi.Size() > eventsRotate {
		_ = os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// EventsOptions select what Events reports.
type EventsOptions struct {
	Since, Until time.Time // zero: from now on (Since), forever (Until)
	Follow       bool      // wait for new events (until Until or ctx ends)
}

// Events calls fn with the journal's events from Since, in order; with
// Follow it then waits for new ones (inotify on the store directory) until
// Until passes or ctx is done.
func (s *Store) Events(ctx context.Context, o EventsOptions, fn func(Event) error) error {
	p := s.EventsPath()
	emit := func(e Event) (bool, error) {
		t := time.Unix(0, e.TimeNano)
		if !o.Since.IsZero() && t.Before(o.Since) {
			return false, nil
		}
		if !o.Until.IsZero() && t.After(o.Until) {
			return true, nil
		}
		return false, fn(e)
	}
	var w *dirWatch
	if o.Follow {
		var err error
		if w, err = watchDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("watch events: %w", err)
		}
		defer w.Close()
	}
	f, err := os.Open(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read events: %w", err)
	}
	if !o.Since.IsZero() {
		// The rotated journal first: it holds the older events.
		if old, err := os.Open(p + ".1"); err == nil {
			done, err := (&lineReader{f: old}).readEvents(emit)
			old.Close()
			if done || err != nil {
				if f != nil {
					f.Close()
				}
				return err
			}
		}
	} else if f != nil && o.Follow {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return err
		}
	}
	lr := &lineReader{f: f}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if f != nil {
			done, err := lr.readEvents(emit)
			if done || err != nil {
				return err
			}
		}
		if !o.Follow || (!o.Until.IsZero() && time.Now().After(o.Until)) {
			return nil
		}
		// Rotated or created meanwhile: go on with the new file.
		if fi, err := os.Stat(p); err == nil && (f == nil || !sameFile(f, fi)) {
			if f != nil {
				if _, err := lr.readEvents(emit); err != nil {
					return err
				}
				f.Close()
			}
			if f, err = os.Open(p); err != nil {
				return fmt.Errorf("read events: %w", err)
			}
			lr = &lineReader{f: f}
			continue
		}
		var deadline time.Time
		if !o.Until.IsZero() {
			deadline = o.Until
		}
		if err := w.wait(ctx, deadline); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
	}
}

func sameFile(f *os.File, fi os.FileInfo) bool {
	cur, err := f.Stat()
	return err == nil && os.SameFile(cur, fi)
}

// lineReader reads whole lines of a growing file: a partial last line
// stays buffered until the writer finishes it.
type lineReader struct {
	f       *os.File
	partial []byte
}

// readEvents passes the complete lines read so far to emit until it
// reports done.
func (lr *lineReader) readEvents(emit func(Event) (bool, error)) (bool, error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := lr.f.Read(buf)
		data := append(lr.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			var e Event
			if json.Unmarshal(data[:i], &e) == nil {
				if done, err := emit(e); done || err != nil {
					return done, err
				}
			}
			data = data[i+1:]
		}
		lr.partial = append([]byte(nil), data...)
		if err == io.EOF || n == 0 {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
