package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Mode is how a Display shows a build: buildx's --progress names.
type Mode string

const (
	Auto    Mode = "auto" // tty on a terminal, plain otherwise
	TTY     Mode = "tty"
	Plain   Mode = "plain"
	RawJSON Mode = "rawjson"
	Quiet   Mode = "quiet"
)

// ParseMode reads --progress: flag, or when it is empty or auto, the
// BUILDKIT_PROGRESS value env (as buildx).
func ParseMode(flag, env string) (Mode, error) {
	v := flag
	if v == "" || v == string(Auto) {
		v = env
	}
	if v == "" {
		return Auto, nil
	}
	switch m := Mode(v); m {
	case Auto, TTY, Plain, RawJSON, Quiet:
		return m, nil
	}
	return "", fmt.Errorf("invalid progress mode %q: expected auto, tty, plain, rawjson or quiet", v)
}

// Display renders a build's updates. Close ends it: a tty draws its last
// frame, and plain and tty print the build's warnings.
type Display interface {
	Writer
	Close() error
}

// New makes the display of mode on out. auto is tty when out is a
// terminal and plain otherwise; tty on something that is not a terminal is
// plain too, so no escape code reaches a file or a pipe.
func New(mode Mode, out io.Writer) Display {
	switch {
	case mode == Quiet:
		return nopDisplay{}
	case mode == RawJSON:
		return &rawJSON{enc: json.NewEncoder(out)}
	case Redraws(mode, out):
		return newTTY(out.(*os.File))
	}
	return newPlain(out)
}

// Redraws reports whether the display of mode on out redraws the
// terminal in place: then nothing else may write to out until it is closed.
func Redraws(mode Mode, out io.Writer) bool {
	f, ok := out.(*os.File)
	return ok && (mode == Auto || mode == TTY) && isTerminal(f)
}

type nopDisplay struct{}

func (nopDisplay) Write(*SolveStatus) {}
func (nopDisplay) Close() error       { return nil }

// rawJSON writes each update as one JSON object on a line of its own, as
// buildx --progress=rawjson does.
type rawJSON struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func (r *rawJSON) Write(s *SolveStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.enc.Encode(s)
	}
}

func (r *rawJSON) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("write progress: %w", r.err)
	}
	return nil
}

// writeWarnings prints the build's warnings as buildx does after a build.
func writeWarnings(w io.Writer, warnings []*VertexWarning) {
	if len(warnings) == 0 {
		return
	}
	plural := "s"
	if len(warnings) == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "\n%d warning%s found:\n", len(warnings), plural)
	for _, x := range warnings {
		fmt.Fprintf(w, " - %s\n", x.Short)
	}
}

// WriteErrorLogs prints the last lines a failed step wrote, framed as
// BuildKit frames them above its error:
//
//	------
//	 > [2/2] RUN make:
//	0.231 make: *** No rule to make target 'all'.  Stop.
//	------
func WriteErrorLogs(w io.Writer, vertex string, lines []string) {
	var b strings.Builder
	b.WriteString("------\n > " + vertex + ":\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString("------\n")
	io.WriteString(w, b.String())
}
