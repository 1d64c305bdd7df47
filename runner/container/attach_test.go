package container

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-x,x", []byte{24, 'x'}, false},
		{"a,b,c", []byte("abc"), false},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}, false},
		{"CTRL-A", []byte{1}, false},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
		{"ctrl-p,", nil, true},
	} {
		got, err := ParseDetachKeys(tc.in)
		if (err != nil) != tc.bad || !bytes.Equal(got, tc.want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestEscapeProxy(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		name, in, want string
		detached       bool
	}{
		{"plain", "hello", "hello", false},
		{"detach", "ab\x10\x11cd", "ab", true},
		{"partial then other", "a\x10b", "a\x10b", false},
		{"repeated first key", "\x10\x10\x11", "\x10", true},
		{"partial at EOF is data", "ab\x10", "ab\x10", false},
		{"second key alone", "\x11", "\x11", false},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(newEscapeProxy(r, keys))
			if string(got) != tc.want || errors.Is(err, ErrDetached) != tc.detached {
				t.Errorf("%s (one byte %v): %q, %v; want %q, detached %v", tc.name, oneByte, got, err, tc.want, tc.detached)
			}
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	fw := &frameWriter{w: &buf}
	fw.write(frameStdout, []byte("out"))
	fw.write(frameStdin, nil)
	fw.resize(24, 80)
	fw.exit(-1)
	fr := &frameReader{r: &buf}
	want := []struct {
		typ byte
		p   string
	}{{frameStdout, "out"}, {frameStdin, ""}, {frameResize, "\x00\x18\x00\x50"}, {frameExit, "\xff\xff\xff\xff"}}
	for _, w := range want {
		typ, p, err := fr.read()
		if err != nil || typ != w.typ || string(p) != w.p {
			t.Fatalf("read %c %q %v, want %c %q", typ, p, err, w.typ, w.p)
		}
	}
	if code, ok := parseExit([]byte("\xff\xff\xff\xff")); !ok || code != -1 {
		t.Errorf("parseExit = %d", code)
	}
	if _, _, err := fr.read(); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
	// A truncated or oversized frame is an error, not a hang or an allocation.
	for _, bad := range []string{"o\x00\x00\x00\x05ab", "o\xff\xff\xff\xff"} {
		if _, _, err := (&frameReader{r: strings.NewReader(bad)}).read(); err == nil || err == io.EOF {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A client and a hub over a socket pair: input reaches the process's
// stdin (waiting for the process when it comes early), output and the
// exit code reach the client, the end of the input closes a StdinOnce
// stdin.
func TestHubAndClient(t *testing.T) {
	mine, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	h := newHub()
	go h.serve(theirs, true)

	var stdout, stderr bytes.Buffer
	a := &Attach{Stdin: strings.NewReader("typed\n"), Stdout: &stdout, Stderr: &stderr}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := a.stream(mine)
		done <- result{code, err}
	}()

	// The process arrives after the input was sent.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	h.setProcess(inW, true, nil)
	got, err := io.ReadAll(inR) // EOF: the client's input ended, stdin is StdinOnce
	if err != nil || string(got) != "typed\n" {
		t.Fatalf("the process read %q, %v", got, err)
	}
	h.output(frameStdout).Write([]byte("to stdout\n"))
	h.output(frameStderr).Write([]byte("to stderr\n"))
	h.exit(42)
	r := <-done
	if r.code != 42 || r.err != nil || stdout.String() != "to stdout\n" || stderr.String() != "to stderr\n" {
		t.Errorf("client: %d, %v, %q, %q", r.code, r.err, stdout.String(), stderr.String())
	}
}

// The detach keys end the client's stream with ErrDetached; the hub
// forgets the client, and the process's stdin stays open.
func TestClientDetach(t *testing.T) {
	mine, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	h := newHub()
	served := make(chan struct{})
	go func() { h.serve(theirs, true); close(served) }()
	pr, pw := io.Pipe()
	a := &Attach{Stdin: pr, DetachKeys: []byte{16, 17}}
	done := make(chan error, 1)
	go func() { _, err := a.stream(mine); done <- err }()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	h.setProcess(inW, false, nil)
	pw.Write([]byte("x\x10\x11"))
	if err := <-done; !errors.Is(err, ErrDetached) {
		t.Fatalf("stream: %v", err)
	}
	<-served
	buf := make([]byte, 8)
	if n, err := inR.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Errorf("the process read %q, %v", buf[:n], err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) != 0 || h.stdin == nil {
		t.Errorf("after the detach: %d clients, stdin %v", len(h.clients), h.stdin)
	}
}
