package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/progress"
)

// buildDisplay is the display of a build's progress on stderr, from
// --progress (or BUILDKIT_PROGRESS) and -q, as buildx takes them.
func buildDisplay(flag string, quiet bool) (progress.Display, error) {
	mode, err := progress.ParseMode(flag, os.Getenv("BUILDKIT_PROGRESS"))
	if err != nil {
		return nil, fmt.Errorf("--progress: %w", err)
	}
	if quiet {
		if mode != progress.Auto && mode != progress.Quiet && flag != "" && flag != string(progress.Auto) {
			return nil, fmt.Errorf("--progress=%s and --quiet cannot be used together", mode)
		}
		mode = progress.Quiet
	}
	return progress.New(mode, os.Stderr), nil
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
