package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// steps feeds a display the updates of two steps running side by side,
// whose output interleaves and ends without a newline.
func steps(d Display) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) *time.Time { t := t0.Add(time.Duration(ms) * time.Millisecond); return &t }
	a, b := digest.FromString("a"), digest.FromString("b")
	d.Write(&SolveStatus{Vertexes: []*Vertex{{Digest: a, Name: "[a 2/2] RUN make", Started: at(0)}}})
	d.Write(&SolveStatus{Vertexes: []*Vertex{{Digest: b, Name: "[b 2/2] RUN test", Started: at(10)}}})
	d.Write(&SolveStatus{Logs: []*VertexLog{{Vertex: a, Stream: 1, Data: []byte("compiling\nhalf a "), Timestamp: *at(100)}}})
	d.Write(&SolveStatus{Logs: []*VertexLog{{Vertex: b, Stream: 2, Data: []byte("no newline"), Timestamp: *at(200)}}})
	d.Write(&SolveStatus{Logs: []*VertexLog{{Vertex: a, Stream: 1, Data: []byte("line\r\n"), Timestamp: *at(300)}}})
	d.Write(&SolveStatus{Vertexes: []*Vertex{{Digest: b, Name: "[b 2/2] RUN test", Started: at(10), Completed: at(1510), Error: "exit code: 1"}}})
	d.Write(&SolveStatus{Vertexes: []*Vertex{{Digest: a, Name: "[a 2/2] RUN make", Started: at(0), Completed: at(2000)}}})
	c := digest.FromString("c")
	d.Write(&SolveStatus{Vertexes: []*Vertex{{Digest: c, Name: "[3/3] COPY x /", Started: at(2000), Completed: at(2000), Cached: true}}})
	d.Write(&SolveStatus{Warnings: []*VertexWarning{{Short: []byte("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)")}}})
}

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	d := New(Plain, &out)
	steps(d)
	d.Close()
	want := `#1 [a 2/2] RUN make

#2 [b 2/2] RUN test

#1 [a 2/2] RUN make
#1 0.100 compiling
#1 0.300 half a line

#2 [b 2/2] RUN test
#2 1.500 no newline
#2 ERROR: exit code: 1

#1 [a 2/2] RUN make
#1 DONE 2.0s

#3 [3/3] COPY x /
#3 CACHED

1 warning found:
 - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)
`
	if out.String() != want {
		t.Errorf("plain:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRawJSON(t *testing.T) {
	var out bytes.Buffer
	d := New(RawJSON, &out)
	steps(d)
	d.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 9 {
		t.Fatalf("%d updates:\n%s", len(lines), out.String())
	}
	var s SolveStatus
	if err := json.Unmarshal([]byte(lines[2]), &s); err != nil || len(s.Logs) != 1 || string(s.Logs[0].Data) != "compiling\nhalf a " || s.Logs[0].Stream != 1 {
		t.Errorf("log update %s: %+v %v", lines[2], s, err)
	}
	if !strings.Contains(lines[2], `"data":"Y29tcGlsaW5nCmhhbGYgYSA="`) {
		t.Errorf("log data is not base64 as buildx's: %s", lines[2])
	}
}

func TestQuietAndParseMode(t *testing.T) {
	var out bytes.Buffer
	d := New(Quiet, &out)
	steps(d)
	d.Close()
	if out.Len() != 0 {
		t.Errorf("quiet wrote %q", out.String())
	}
	// tty on something that is no terminal is plain: no escape codes.
	d = New(TTY, &out)
	steps(d)
	d.Close()
	if strings.Contains(out.String(), "\x1b") || !strings.HasPrefix(out.String(), "#1 [a 2/2] RUN make\n") {
		t.Errorf("tty on a buffer:\n%q", out.String())
	}
	for _, tc := range []struct{ flag, env, want string }{
		{"", "", "auto"}, {"auto", "plain", "plain"}, {"", "rawjson", "rawjson"}, {"tty", "plain", "tty"}, {"quiet", "", "quiet"},
	} {
		if m, err := ParseMode(tc.flag, tc.env); err != nil || string(m) != tc.want {
			t.Errorf("ParseMode(%q, %q) = %q, %v; want %q", tc.flag, tc.env, m, err, tc.want)
		}
	}
	if _, err := ParseMode("fancy", ""); err == nil {
		t.Error("ParseMode(fancy) did not fail")
	}
}

// TestFrame: the tty's lines fit the width they are drawn at, and the rows
// a frame takes after the terminal narrowed count its wrapped lines.
func TestFrame(t *testing.T) {
	if got := fit(" => [a 2/2] RUN make", "1.2s", 30); got != " => [a 2/2] RUN make      1.2s" {
		t.Errorf("fit = %q", got)
	}
	if got := fit(" => [a 2/2] RUN a very long command line", "1.2s", 20); got != " => [a 2/2] RUN 1.2s" {
		t.Errorf("fit long = %q", got)
	}
	if got := fit("tab\there\x1b[2J", "", 40); got != "tab here [2J" {
		t.Errorf("fit control characters = %q", got)
	}
	if n := rowsAt([]string{strings.Repeat("x", 79), "short", ""}, 40); n != 2+1+1 {
		t.Errorf("rowsAt = %d", n)
	}
	tt := &tty{vs: map[digest.Digest]*ttyVertex{}, start: time.Now()}
	steps(tt)
	frame := tt.frame(40, true)
	want := []string{ // 39 columns: never the last one
		"[+] Building",
		" => [a 2/2] RUN make               2.0s",
		" => ERROR [b 2/2] RUN test         1.5s",
		" => => # no newline",
		" => CACHED [3/3] COPY x /          0.0s",
	}
	if len(frame) != len(want) {
		t.Fatalf("frame:\n%s", strings.Join(frame, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(frame[i], want[i]) || len([]rune(frame[i])) > 39 {
			t.Errorf("frame line %d %q, want %q", i, frame[i], want[i])
		}
	}
	if !strings.HasSuffix(frame[0], "(3/3)") {
		t.Errorf("header %q: a failed build is not FINISHED", frame[0])
	}
}
