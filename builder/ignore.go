package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignorer applies the build context's .dockerignore: files it excludes are
// invisible to COPY and ADD. A nil ignorer excludes nothing.
type ignorer struct {
	root string // the context directory, symlinks resolved
	pm   *patternmatcher.PatternMatcher
}

// loadIgnore reads <Dockerfile>.dockerignore beside a named Dockerfile, else
// CONTEXT/.dockerignore, with docker's pattern semantics.
func loadIgnore(contextDir, dockerfile string) (*ignorer, error) {
	var candidates []string
	if dockerfile != "" && dockerfile != "-" {
		candidates = append(candidates, dockerfile+".dockerignore")
	}
	candidates = append(candidates, filepath.Join(contextDir, ".dockerignore"))
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		root := contextDir
		if real, err := filepath.EvalSymlinks(contextDir); err == nil {
			root = real
		}
		return &ignorer{root: root, pm: pm}, nil
	}
	return nil, nil
}

// newExcluder makes the filter of COPY --exclude patterns for a directory
// source: paths are matched relative to it.
func newExcluder(patterns []string, root string) (*ignorer, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	return &ignorer{root: root, pm: pm}, nil
}

// check says whether host (a path inside the context) is excluded and, for
// a directory, whether to look inside anyway because an exception ("!")
// may bring some of its contents back.
func (ig *ignorer) check(host string, isDir bool) (excluded, descend bool) {
	if ig == nil {
		return false, isDir
	}
	rel, err := filepath.Rel(ig.root, host)
	if err != nil || rel == "." {
		return false, isDir
	}
	//nolint:staticcheck // MatchesOrParentMatches is the documented matcher for a walk.
	excluded, err = ig.pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	if err != nil {
		return false, isDir
	}
	return excluded, isDir && (!excluded || ig.pm.Exclusions())
}
