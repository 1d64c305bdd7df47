package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

// buildProgressMode is how a build shows its progress, from --progress (or
// BUILDKIT_PROGRESS) and -q, as buildx takes them.
func buildProgressMode(flag string, quiet bool) (progress.Mode, error) {
	mode, err := progress.ParseMode(flag, os.Getenv("BUILDKIT_PROGRESS"))
	if err != nil {
		return "", fmt.Errorf("--progress: %w", err)
	}
	if quiet {
		if mode != progress.Auto && mode != progress.Quiet && flag != "" && flag != string(progress.Auto) {
			return "", fmt.Errorf("--progress=%s and --quiet cannot be used together", mode)
		}
		mode = progress.Quiet
	}
	return mode, nil
}

// asideDisplay is where text for stderr goes while the display of mode
// runs: stderr, unless the display redraws the terminal; then it is held
// until flush.
func asideDisplay(mode progress.Mode) (w io.Writer, flush func()) {
	if !progress.Redraws(mode, os.Stderr) {
		return os.Stderr, func() {}
	}
	var b lockedBuffer
	return &b, func() { os.Stderr.Write(b.b.Bytes()) }
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// reportBuildError prints, before the error itself, the last lines the
// failed step printed, as BuildKit does: in every progress mode, -q too.
func reportBuildError(err error) {
	var e *builder.Error
	if errors.As(err, &e) && e.Step != "" && len(e.Logs) > 0 {
		progress.WriteErrorLogs(os.Stderr, e.Step, e.Logs)
	}
}

// runCheck is kiln build --check: the build checks, no build; exit 1 when
// they found anything.
func runCheck(g *globals, opts builder.Options) error {
	s, err := cache.Open(g.root)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := builder.Check(s, opts)
	if err != nil {
		return err
	}
	res.Write(os.Stdout)
	if len(res.Warnings) > 0 {
		return exitError(1)
	}
	return nil
}
