package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/cache"
)

// IsGitURL reports whether a build context names a Git repository, as
// docker build and buildx recognize one: git:// and git@host: always,
// http(s):// (and, for local repositories, file://) when the path ends in
// .git, before the #fragment.
func IsGitURL(s string) bool {
	if strings.HasPrefix(s, "git://") || strings.HasPrefix(s, "git@") {
		return true
	}
	for _, p := range []string{"https://", "http://", "file://"} {
		if strings.HasPrefix(s, p) {
			u, _, _ := strings.Cut(s, "#")
			return strings.HasSuffix(u, ".git")
		}
	}
	return false
}

// gitContext clones the repository of url (#REF:SUBDIR as buildx: a branch,
// tag or commit, and a directory of the checkout as the context) into a
// temporary directory, without its .git directory. The Dockerfile is read
// from the context, through os.Root.
func gitContext(ctx context.Context, url string, o ContextOptions) (*Context, error) {
	repo, frag, _ := strings.Cut(url, "#")
	ref, subdir, _ := strings.Cut(frag, ":")
	if strings.HasPrefix(ref, "-") || strings.HasPrefix(repo, "-") {
		return nil, fmt.Errorf("build context %s: bad reference: %w", url, cache.ErrInvalid)
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("build context %s: needs git: %w", url, err)
	}
	tmp, err := o.TempDir("git-")
	if err != nil {
		return nil, err
	}
	c := &Context{tmp: tmp}
	fail := func(err error) (*Context, error) {
		c.Close()
		return nil, fmt.Errorf("build context %s: %w", url, err)
	}
	checkout := filepath.Join(tmp, "checkout")
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = checkout
		// No prompt for credentials, no system or user configuration.
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ASKPASS=/bin/false")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	if err := os.Mkdir(checkout, 0o755); err != nil {
		return fail(err)
	}
	if err := git("init", "-q"); err != nil {
		return fail(err)
	}
	if err := git("remote", "add", "origin", repo); err != nil {
		return fail(err)
	}
	want := ref
	if want == "" {
		want = "HEAD"
	}
	// A branch, tag or (on servers that allow it) commit in one shallow
	// fetch; else the whole history, for a commit a shallow fetch cannot name.
	if err := git("fetch", "-q", "--depth=1", "--no-tags", "origin", want); err == nil {
		err = git("checkout", "-q", "FETCH_HEAD")
		if err != nil {
			return fail(err)
		}
	} else {
		if err := git("fetch", "-q", "--tags", "origin"); err != nil {
			return fail(err)
		}
		if err := git("checkout", "-q", want); err != nil {
			return fail(fmt.Errorf("no branch, tag or commit %q: %w", want, err))
		}
	}
	if err := git("submodule", "update", "-q", "--init", "--recursive", "--depth=1"); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(filepath.Join(checkout, ".git")); err != nil {
		return fail(err)
	}
	c.Dir = checkout
	if subdir != "" {
		root, err := os.OpenRoot(checkout)
		if err != nil {
			return fail(err)
		}
		rel := strings.TrimPrefix(filepath.Clean("/"+subdir), "/")
		if rel == "" {
			rel = "."
		}
		fi, err := root.Stat(rel)
		root.Close()
		if err != nil {
			return fail(fmt.Errorf("subdirectory %s: %w", subdir, err))
		}
		if !fi.IsDir() {
			return fail(fmt.Errorf("subdirectory %s: not a directory: %w", subdir, cache.ErrInvalid))
		}
		// Stat inside the root refused a path leaving it; the real path,
		// checked again, is what the build uses.
		top, err := filepath.EvalSymlinks(checkout)
		if err != nil {
			return fail(err)
		}
		real, err := filepath.EvalSymlinks(filepath.Join(checkout, rel))
		if err != nil || !strings.HasPrefix(real+"/", top+"/") {
			return fail(fmt.Errorf("subdirectory %s leaves the repository: %w", subdir, cache.ErrInvalid))
		}
		c.Dir = real
	}
	if err := c.readDockerfile(o.Dockerfile); err != nil {
		return fail(err)
	}
	return c, nil
}
