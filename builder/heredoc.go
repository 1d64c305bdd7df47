package builder

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner"
)

// heredocScript is a RUN heredoc with a shebang: BuildKit runs it as a file
// mounted read-only under /dev/pipes.
type heredocScript struct {
	name, data string
}

// pipesDir is where BuildKit mounts heredoc scripts.
const pipesDir = "/dev/pipes"

// heredocCommand turns a RUN with heredocs into the command BuildKit runs:
// a lone heredoc with a shebang runs as a script file, through the shell; a lone heredoc
// without one runs as the shell's script; otherwise the heredocs are put
// back after the command line and the shell itself reads them (so their
// delimiters' quoting decides expansion, as in sh).
func (b *build) heredocCommand(st *stage, c *instructions.RunCommand) ([]string, *heredocScript, error) {
	if len(c.CmdLine) != 1 || !c.PrependShell {
		return nil, nil, fmt.Errorf("RUN: heredocs need the shell form")
	}
	if parser.MustParseHeredoc(c.CmdLine[0]) != nil {
		f := c.Files[0]
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			// Run through the shell, as BuildKit does (and records).
			script := path.Join(pipesDir, f.Name)
			return append(append([]string(nil), st.shell...), script), &heredocScript{name: f.Name, data: data}, nil
		}
		return append(append([]string(nil), st.shell...), data), nil, nil
	}
	full := c.CmdLine[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return append(append([]string(nil), st.shell...), full), nil, nil
}

// mount writes the script into a temporary directory of the store and
// returns its mount; release removes it.
func (h *heredocScript) mount(s *cache.Store) (m runner.Mount, release func(), err error) {
	dir, err := s.TempDir("heredoc.")
	if err != nil {
		return m, nil, fmt.Errorf("RUN heredoc: %w", err)
	}
	p := filepath.Join(dir, "script")
	if err := os.WriteFile(p, []byte(h.data), 0o755); err != nil {
		os.RemoveAll(dir)
		return m, nil, fmt.Errorf("RUN heredoc: %w", err)
	}
	m = runner.Mount{Type: "bind", Source: p, Target: path.Join(pipesDir, h.name), Options: []string{"ro"}}
	return m, func() { os.RemoveAll(dir) }, nil
}
