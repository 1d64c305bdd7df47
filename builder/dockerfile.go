package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/agext/levenshtein"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Error is a build error located in the Dockerfile. It prints as
// "Dockerfile:12: COPY: no source files were specified".
type Error struct {
	File string
	Line int
	Err  error
	// Step and Logs, when a step failed as it ran, are its name as the
	// progress shows it ("[build 2/3] RUN make") and the last lines it printed.
	Step string
	Logs []string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	name     string // as the user named it, for messages
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	// syntax is the "# syntax=" directive: accepted, and noted, since kiln
	// builds with its own frontend.
	syntax string
}

// readDockerfile reads the Dockerfile: "-" is stdin, a relative path is
// relative to the current directory, and an empty path means CONTEXT/Dockerfile.
func readDockerfile(path, contextDir string, stdin io.Reader) ([]byte, string, error) {
	switch path {
	case "-":
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		return data, "Dockerfile", nil
	case "":
		path = filepath.Join(contextDir, "Dockerfile")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read Dockerfile: %w", err)
	}
	return data, filepath.Base(path), nil
}

func parseDockerfile(name string, data []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, locate(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locate(name, err)
	}
	if len(stages) == 0 {
		return nil, &Error{File: name, Err: errors.New("file with no instructions")}
	}
	df := &dockerfile{name: name, stages: stages, metaArgs: metaArgs, escape: res.EscapeToken}
	if ref, _, _, ok := parser.DetectSyntax(data); ok {
		df.syntax = ref
	}
	return df, nil
}

// locate turns a parser error into an Error with the file and line, and
// suggests the nearest instruction for an unknown one.
func locate(name string, err error) error {
	line := 0
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		line = loc.Locations[0][0].Start.Line
	}
	msg := err.Error()
	if m := parseErrorLine().FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	var unknown *instructions.UnknownInstructionError
	if errors.As(err, &unknown) {
		line = unknown.Line
		msg = fmt.Sprintf("unknown instruction: %s", unknown.Instruction)
		if s := nearestInstruction(unknown.Instruction); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
	}
	return &Error{File: name, Line: line, Err: errors.New(msg)}
}

var parseErrorLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^dockerfile parse error on line (\d+): `) })

var instructionNames = []string{"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
	"LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

func nearestInstruction(word string) string {
	best, bestDist := "", 3
	for _, n := range instructionNames {
		if d := levenshtein.Distance(strings.ToUpper(word), n, nil); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// lineOf is the first line of a command (or a stage's FROM) in the Dockerfile.
func lineOf(cmd any) int {
	var loc []parser.Range
	switch c := cmd.(type) {
	case *instructions.Stage:
		loc = c.Location
	case interface{ Location() []parser.Range }:
		loc = c.Location()
	}
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}
