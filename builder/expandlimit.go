package builder

import (
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// maxExpansion bounds what variables add to one word when a Dockerfile is
// expanded (1 MiB). Without a bound, each line of
//
//	ARG X=$X$X$X$X$X$X$X$X$X$X
//
// makes X ten times longer: 13 of them asked for terabytes. No value that
// big has a use: the kernel refuses any single argument or environment
// string over 128 KiB (MAX_ARG_STRLEN) to the programs a RUN starts, and a
// label or path of a megabyte is no label or path. The bound is 8 times
// that, so nothing a build could use is refused.
const maxExpansion = 1 << 20

// boundedEnv counts the bytes of the values a word's expansion takes and
// stops handing them out past maxExpansion, so the word never grows beyond
// the bound plus its own text.
type boundedEnv struct {
	shell.EnvGetter
	n int
}

func (e *boundedEnv) Get(key string) (string, bool) {
	v, ok := e.EnvGetter.Get(key)
	if e.n += len(v); e.n > maxExpansion {
		return "", ok
	}
	return v, ok
}

// check turns an expansion that went past the bound into an error.
func (e *boundedEnv) check(err error) error {
	if err == nil && e.n > maxExpansion {
		return fmt.Errorf("variable expansion exceeds %d bytes", maxExpansion)
	}
	return err
}
