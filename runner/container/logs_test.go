package container

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLogs(t *testing.T) {
	c := &Container{Config: Config{ID: "x"}, Dir: t.TempDir()}
	f, err := os.OpenFile(c.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lw := &logWriter{f: f}
	var attached bytes.Buffer
	lw.pump("stdout", strings.NewReader("one\ntwo\npartial"), &attached)
	lw.pump("stderr", strings.NewReader("err\n"), nil)
	long := strings.Repeat("x", maxLogLine+10)
	lw.pump("stdout", strings.NewReader(long), nil)
	f.Close()
	if attached.String() != "one\ntwo\npartial" {
		t.Errorf("the attached client got %q", attached.String())
	}
	logs := func(o LogOptions) (string, string) {
		var out, errb bytes.Buffer
		if err := c.Logs(&out, &errb, o, nil); err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String()
	}
	out, errOut := logs(LogOptions{Tail: -1})
	if out != "one\ntwo\npartial"+long || errOut != "err\n" {
		t.Errorf("logs: %q, %q", out[:min(len(out), 40)], errOut)
	}
	// A line longer than the limit is cut in two entries.
	data, _ := os.ReadFile(c.LogPath())
	if n := strings.Count(string(data), "\n"); n != 6 {
		t.Errorf("%d log entries, want 6", n)
	}
	if out, errOut := logs(LogOptions{Tail: 2}); out != long || errOut != "" {
		t.Errorf("tail 2: %d bytes, %q", len(out), errOut)
	}
	if out, _ := logs(LogOptions{Tail: 0}); out != "" {
		t.Errorf("tail 0: %q", out)
	}
	out, _ = logs(LogOptions{Tail: 1, Timestamps: true})
	if ts, rest, ok := strings.Cut(out, " "); !ok || rest != long[maxLogLine:] {
		t.Errorf("timestamps: %q", out[:min(len(out), 60)])
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("timestamp %q: %v", ts, err)
	}
	if out, errOut := logs(LogOptions{Tail: -1, Since: time.Now().Add(time.Hour)}); out != "" || errOut != "" {
		t.Errorf("since the future: %q %q", out, errOut)
	}
}
