package progress

import (
	"bytes"
	"strings"
)

// lines splits a stream of output into lines, keeping a last line that has
// no newline yet until more comes or the stream ends: output without a
// trailing newline never runs into the next line printed.
type lines struct {
	partial []byte
}

// add returns the lines completed by p.
func (l *lines) add(p []byte) []string {
	var out []string
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			break
		}
		out = append(out, clean(string(l.partial)+string(p[:i])))
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return out
}

// flush returns the unfinished last line, if any, and forgets it.
func (l *lines) flush() (string, bool) {
	if len(l.partial) == 0 {
		return "", false
	}
	s := clean(string(l.partial))
	l.partial = l.partial[:0]
	return s, true
}

// clean drops a carriage return ending a line (CRLF output).
func clean(s string) string {
	return strings.TrimSuffix(s, "\r")
}
