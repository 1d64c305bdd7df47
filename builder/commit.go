package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// CommitOptions describe `kiln commit`: a container's writable layer on top
// of its image, with the container's config.
type CommitOptions struct {
	Parent digest.Digest // the container's image
	Upper  string        // the container's overlay upper directory
	// Config is the container's config (its Cmd, Env, ...), the new image's
	// config before Changes.
	Config  dockerspec.DockerOCIImageConfig
	Changes []string // Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR
	Comment string   // -m
	Author  string   // -a
	// CreatedBy is the history entry's text (the container's command).
	CreatedBy string
}

// commitInstructions are the instructions docker commit --change takes.
var commitInstructions = map[string]bool{"cmd": true, "entrypoint": true, "env": true, "expose": true,
	"label": true, "onbuild": true, "user": true, "volume": true, "workdir": true}

// ParseChanges parses --change instructions with BuildKit's parser.
func ParseChanges(changes []string) ([]instructions.Command, error) {
	var out []instructions.Command
	for _, ch := range changes {
		res, err := parser.Parse(strings.NewReader(ch))
		if err != nil {
			return nil, fmt.Errorf("--change %q: %w", ch, err)
		}
		for _, node := range res.AST.Children {
			if !commitInstructions[strings.ToLower(node.Value)] {
				return nil, fmt.Errorf("--change %q: %s is not a valid change command", ch, strings.ToUpper(node.Value))
			}
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return nil, fmt.Errorf("--change %q: %w", ch, err)
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}

// Commit makes an image of a container: its upper directory becomes one
// layer, diffed by the same code as a RUN step's (layer.WriteDiff into a
// store snapshot, unchanged copied-up directories pruned, then
// Store.CommitDiff), on top of the parent's layers; the config is the
// container's with Changes applied as Dockerfile instructions would be.
// The caller keeps the upper directory still meanwhile (pauses a running
// container).
func Commit(ctx context.Context, s *cache.Store, o CommitOptions) (digest.Digest, error) {
	cmds, err := ParseChanges(o.Changes)
	if err != nil {
		return "", err
	}
	parent, raw, err := s.Image(o.Parent)
	if err != nil {
		return "", fmt.Errorf("commit: image %s: %w", o.Parent, err)
	}
	lowers, err := s.Lowers(parent.RootFS.DiffIDs)
	if err != nil {
		return "", err
	}
	var img dockerImage
	if err := json.Unmarshal(raw, &img); err != nil {
		return "", fmt.Errorf("commit: image %s: %w", o.Parent, err)
	}
	img.Config = o.Config
	now := time.Now().UTC()
	st := &stage{img: img, lex: shell.NewLex(parser.DefaultEscapeToken), shell: []string{"/bin/sh", "-c"}, created: now}
	if len(img.Config.Shell) > 0 {
		st.shell = img.Config.Shell
	}
	b := &build{store: s}
	history := len(st.img.History)
	for _, cmd := range cmds {
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(st.expand); err != nil {
				return "", fmt.Errorf("--change %s: %w", strings.ToUpper(cmd.Name()), err)
			}
		}
		if w, ok := cmd.(*instructions.WorkdirCommand); ok {
			st.img.Config.WorkingDir = resolveWorkdir(st.img.Config.WorkingDir, w.Path)
			continue
		}
		if err := b.configStep(st, st, cmd); err != nil {
			return "", fmt.Errorf("--change: %w", err)
		}
	}
	st.img.History = st.img.History[:history] // docker commit records one entry: the layer's

	sn, err := s.NewSnapshot()
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.WriteDiff(ctx, pw, o.Upper, layer.DiffOptions{})) }()
	_, err = layer.Apply(ctx, sn.Dir, pr, layer.ApplyOptions{OverlayWhiteouts: true})
	if err == nil {
		_, err = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(err)
	if err == nil {
		err = layer.PruneUnchangedDirs(ctx, sn.Dir, lowers)
	}
	if err != nil {
		sn.Discard()
		return "", fmt.Errorf("commit: %w", err)
	}
	l, err := s.CommitDiff(ctx, sn)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	st.img.RootFS.DiffIDs = append(st.img.RootFS.DiffIDs, l.DiffID)
	st.img.History = append(st.img.History, ocispec.History{
		Created: &now, CreatedBy: o.CreatedBy, Comment: o.Comment, Author: o.Author,
	})
	st.img.Created = &now
	if o.Author != "" {
		st.img.Author = o.Author
	}
	data, err := json.Marshal(st.img)
	if err != nil {
		return "", err
	}
	return s.PutImage(ctx, data, cache.ImageOptions{})
}
