package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// Context is a build context made ready on disk from what the user gave:
// a directory as is, a tar (plain or compressed) or a Dockerfile alone read
// from stdin ("-"), or a Git repository checked out. Close removes what
// was made.
type Context struct {
	// Dir is the context directory.
	Dir string
	// Dockerfile, when not nil, is the Dockerfile, read from the context
	// (a remote one, where -f names a path inside it) or from stdin.
	Dockerfile []byte
	tmp        string
}

// Temporary reports whether the context was made for the build (from
// stdin or Git) and goes with Close.
func (c *Context) Temporary() bool { return c.tmp != "" }

// Close removes the context's temporary directory, if any.
func (c *Context) Close() error {
	if c.tmp == "" {
		return nil
	}
	return os.RemoveAll(c.tmp)
}

// ContextOptions say how OpenContext works.
type ContextOptions struct {
	// Dockerfile is -f: for a context made from a tar or a Git repository,
	// a path inside it (default Dockerfile); "-" is stdin.
	Dockerfile string
	Stdin      io.Reader
	// TempDir makes the directory a context is made in (cache.Store.TempDir).
	TempDir func(pattern string) (string, error)
}

// OpenContext makes the context arg names ready: "-" reads a tar (gzip,
// zstd, bzip2, xz or none) or a Dockerfile alone from stdin; a Git URL
// (git://, git@, or an https://, http:// or file:// URL ending in .git, with
// #REF:SUBDIR) is cloned; anything else is a local directory, used in place.
// Whatever comes from outside is hostile: a tar is extracted with
// layer.Apply, which never writes outside its directory, and the Dockerfile
// of a tar or repository is read through os.Root, so a symlink cannot
// point it at a host file.
func OpenContext(ctx context.Context, arg string, o ContextOptions) (*Context, error) {
	switch {
	case arg == "-":
		if o.Dockerfile == "-" {
			return nil, fmt.Errorf("build context -: stdin cannot be both the context and the Dockerfile (-f -): %w", cache.ErrInvalid)
		}
		c, err := stdinContext(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("build context from stdin: %w", err)
		}
		return c, nil
	case IsGitURL(arg):
		return gitContext(ctx, arg, o)
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
		return nil, fmt.Errorf("build context %s: only Git repositories (URLs ending in .git) are supported as remote contexts: %w", arg, cache.ErrInvalid)
	}
	return &Context{Dir: arg}, nil
}

// stdinContext reads stdin: a tar is extracted into a fresh directory; any
// other content is the Dockerfile of an empty context, as docker build - does.
func stdinContext(ctx context.Context, o ContextOptions) (*Context, error) {
	dr, _, err := layer.Decompress(o.Stdin)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	br := bufio.NewReaderSize(dr, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	tmp, err := o.TempDir("context-")
	if err != nil {
		return nil, err
	}
	c := &Context{Dir: filepath.Join(tmp, "context"), tmp: tmp}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		c.Close()
		return nil, err
	}
	if !isTar(head) {
		if o.Dockerfile != "" {
			c.Close()
			return nil, fmt.Errorf("stdin holds a Dockerfile, not a tar: -f %s names nothing: %w", o.Dockerfile, cache.ErrInvalid)
		}
		if c.Dockerfile, err = io.ReadAll(br); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if _, err := layer.Apply(ctx, c.Dir, br, layer.ApplyOptions{}); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.readDockerfile(o.Dockerfile); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// isTar reports whether head starts a tar archive (ustar or GNU magic).
func isTar(head []byte) bool {
	return len(head) >= 263 && (string(head[257:262]) == "ustar")
}

// readDockerfile reads the Dockerfile -f names inside the context (default
// Dockerfile); "-" leaves it to the build (stdin).
func (c *Context) readDockerfile(name string) error {
	if name == "-" {
		return nil
	}
	if name == "" {
		name = "Dockerfile"
	}
	root, err := os.OpenRoot(c.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	data, err := root.ReadFile(strings.TrimPrefix(filepath.Clean("/"+name), "/"))
	if err != nil {
		return fmt.Errorf("read Dockerfile %s in the context: %w", name, err)
	}
	c.Dockerfile = data
	return nil
}
