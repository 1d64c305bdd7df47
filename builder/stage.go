package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// dockerImage is an image config with docker's extensions (HEALTHCHECK,
// ONBUILD, SHELL).
type dockerImage = dockerspec.DockerOCIImage

// hostPlatform is the build platform: the host's.
func hostPlatform() ocispec.Platform { return cache.HostPlatform() }

// defaultPath is the PATH BuildKit gives an image that sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stage is the state of a stage being built: the image config it has so
// far, and the build arguments in scope.
type stage struct {
	name   string
	img    dockerspec.DockerOCIImage
	args   []arg // declared ARGs in scope, in declaration order
	shell  []string
	cmdSet bool
	lex    *shell.Lex
	// baseLayers is how many layers the stage's base image has: the layers
	// above are the ones this build made.
	baseLayers int
	index      int // position in the Dockerfile
	// cacheKey is the build cache key of the stage's filesystem so far: the
	// base image's ID, then each step's key. baseKey and baseName are where it
	// started.
	cacheKey, baseKey digest.Digest
	baseName          string
	// created is the time of the newest layer so far: history entries and the
	// config take it, so a fully cached build makes the same image again.
	created time.Time
	// epoch, when set (SOURCE_DATE_EPOCH), is every timestamp of the image.
	epoch *time.Time
	// stepText is the name of the step being built, as the progress shows
	// it ("[build 2/3] RUN make"); vtx reports its progress.
	stepText string
	vtx      *vertex
	// runsLeft is how many RUN instructions of the stage follow the one
	// being built: the build starts the next one's sandbox ahead of it.
	runsLeft int
	// onbuild are the base image's ONBUILD triggers, run right after FROM.
	onbuild []instructions.Command
	// platform is the stage's platform: its FROM --platform, or the target.
	platform ocispec.Platform
	// meta holds the global ARGs; plan is set during the dry pass.
	meta *stage
	plan *plan
}

type arg struct {
	key   string
	value *string
	// predefined marks the platform ARGs every build has.
	predefined bool
}

// envGetter looks variables up for Dockerfile expansion: ENV wins over ARG.
type envGetter struct{ st *stage }

func (g envGetter) Get(key string) (string, bool) {
	for i := len(g.st.img.Config.Env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(g.st.img.Config.Env[i], "="); k == key {
			return v, true
		}
	}
	for i := len(g.st.args) - 1; i >= 0; i-- {
		if a := g.st.args[i]; a.key == key && a.value != nil {
			return *a.value, true
		}
	}
	return "", false
}

func (g envGetter) Keys() []string {
	var keys []string
	for _, e := range g.st.img.Config.Env {
		k, _, _ := strings.Cut(e, "=")
		keys = append(keys, k)
	}
	for _, a := range g.st.args {
		keys = append(keys, a.key)
	}
	return keys
}

func (st *stage) expand(word string) (string, error) {
	lex := *st.lex // a Lex keeps state while it works: one per call
	env := &boundedEnv{EnvGetter: envGetter{st}}
	s, _, err := lex.ProcessWord(word, env)
	return s, env.check(err)
}

// expandRaw expands a heredoc's content: variables only, quotes kept.
func (st *stage) expandRaw(word string) (string, error) {
	lex := *st.lex
	lex.SkipProcessQuotes = true
	env := &boundedEnv{EnvGetter: envGetter{st}}
	s, _, err := lex.ProcessWord(word, env)
	return s, env.check(err)
}

// argEnv is the build arguments with values as KEY=VALUE, those ENV does not shadow.
func (st *stage) argEnv() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range st.img.Config.Env {
		k, _, _ := strings.Cut(e, "=")
		seen[k] = true
	}
	for i := len(st.args) - 1; i >= 0; i-- {
		a := st.args[i]
		if a.value == nil || seen[a.key] {
			continue
		}
		seen[a.key] = true
		out = append(out, a.key+"="+*a.value)
	}
	slices.Reverse(out)
	return out
}

// proxyArgs are the build args BuildKit predefines for proxies: given with
// --build-arg they reach RUN without an ARG, and stay out of the image's
// history and of cache keys.
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// proxyEnv is the proxy build args given and not declared as ARGs.
func (b *build) proxyEnv(st *stage) []string {
	var out []string
	for _, k := range proxyArgs {
		v, ok := b.opts.BuildArgs[k]
		if !ok {
			continue
		}
		declared := false
		for _, a := range st.args {
			declared = declared || a.key == k
		}
		if !declared {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// argValues is the declared ARGs with the values they have now, for explaining cache misses.
func (st *stage) argValues() map[string]string {
	out := map[string]string{}
	for _, a := range st.args {
		v, _ := envGetter{st}.Get(a.key)
		out[a.key] = v
	}
	return out
}

// argHistory is every ARG declared in the stage as KEY=VALUE, as BuildKit
// writes them into a RUN's history: the value ENV gives it wins, and an ARG
// with no value shows empty.
func (st *stage) argHistory() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range st.args {
		if seen[a.key] {
			continue
		}
		seen[a.key] = true
		v, _ := envGetter{st}.Get(a.key)
		out = append(out, a.key+"="+v)
	}
	return out
}

func (st *stage) setEnv(key, value string) {
	for i, e := range st.img.Config.Env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			st.img.Config.Env[i] = key + "=" + value
			return
		}
	}
	st.img.Config.Env = append(st.img.Config.Env, key+"="+value)
}

// addHistory records a step. emptyLayer marks metadata-only steps.
func (st *stage) addHistory(createdBy string, emptyLayer bool) {
	t := st.created.UTC()
	if st.epoch != nil {
		t = st.epoch.UTC()
	}
	st.img.History = append(st.img.History, ocispec.History{
		Created:    &t,
		CreatedBy:  createdBy,
		Comment:    "buildkit.dockerfile.v0",
		EmptyLayer: emptyLayer,
	})
}

// addLayer records a layer made (or found in the cache) at time created.
func (st *stage) addLayer(diffID digest.Digest, createdBy string, created time.Time) {
	st.img.RootFS.DiffIDs = append(st.img.RootFS.DiffIDs, diffID)
	if created.After(st.created) {
		st.created = created
	}
	st.addHistory(createdBy, false)
}

// newStage starts a stage from its FROM line.
func (b *build) newStage(ctx context.Context, s instructions.Stage, built map[string]*stage, meta *stage) (*stage, error) {
	line := 0
	if len(s.Location) > 0 {
		line = s.Location[0].Start.Line
	}
	base, err := meta.expand(s.BaseName)
	if err != nil {
		return nil, b.errorf(line, "FROM %s: %v", s.BaseName, err)
	}
	base, dirCtx := b.named(base)
	if dirCtx != nil {
		return nil, b.errorf(line, "FROM %s: the build context %s is a directory: use it with COPY --from or RUN --mount from=, FROM needs an image", s.BaseName, dirCtx.Dir)
	}
	// Each stage has its own lexer: stages run in parallel, and a Lex keeps
	// state while it works.
	lex := *meta.lex
	st := &stage{name: s.Name, shell: []string{"/bin/sh", "-c"}, lex: &lex, epoch: b.opts.SourceDateEpoch, meta: meta}
	platform, err := b.stagePlatform(meta, s.Platform, line)
	if err != nil {
		return nil, err
	}
	st.platform = platform
	host := cache.FormatPlatform(platform) == cache.FormatPlatform(hostPlatform())
	switch {
	case strings.EqualFold(base, "scratch"):
		st.img.Platform = ocispec.Platform{OS: "linux", Architecture: platform.Architecture, Variant: platform.Variant}
		st.img.RootFS.Type = "layers"
		st.baseKey = digest.FromString("scratch")
		if !host {
			// The key of an image's base is its ID, of its platform already.
			st.baseKey = digest.FromString("scratch " + cache.FormatPlatform(platform))
		}
		st.created = time.Unix(0, 0)
	case built[strings.ToLower(base)] != nil:
		parent := built[strings.ToLower(base)]
		if s.Platform == "" {
			st.platform = parent.platform
		}
		st.img = cloneImage(parent.img)
		st.shell = slices.Clone(parent.shell)
		st.baseKey, st.created = parent.cacheKey, parent.created
		// As BuildKit, a stage inherits its parent stage's ARGs with their
		// values, and runs the parent's own ONBUILD triggers (those of the
		// parent's base ran in the parent and are used up).
		st.args = slices.Clone(parent.args)
		if err := b.takeTriggers(st, line, base); err != nil {
			return nil, err
		}
	default:
		id, err := b.resolveBase(ctx, base, platform)
		if err != nil {
			if errors.Is(err, cache.ErrNotFound) {
				return nil, b.errorf(line, "FROM %s: image not found in the store (kiln import or kiln load it first)", base)
			}
			return nil, b.errorf(line, "FROM %s: %v", base, err)
		}
		_, raw, err := b.store.Image(id)
		if err != nil {
			return nil, b.errorf(line, "FROM %s: %v", base, err)
		}
		if err := json.Unmarshal(raw, &st.img); err != nil {
			return nil, b.errorf(line, "FROM %s: image config: %v", base, err)
		}
		if err := b.takeTriggers(st, line, base); err != nil {
			return nil, err
		}
		if len(st.img.Config.Shell) > 0 {
			st.shell = slices.Clone(st.img.Config.Shell)
		}
		st.baseKey, st.baseName = id, base
		if st.img.Created != nil {
			st.created = *st.img.Created
		}
	}
	st.baseLayers = len(st.img.RootFS.DiffIDs)
	st.cacheKey = st.baseKey
	if _, ok := (envGetter{st}).Get("PATH"); !ok {
		st.img.Config.Env = append([]string{defaultPath}, st.img.Config.Env...)
	}
	if st.img.Platform.Architecture != st.platform.Architecture {
		st.img.Platform.Variant = st.platform.Variant
	}
	st.img.Platform.OS, st.img.Platform.Architecture = "linux", st.platform.Architecture
	if st.img.RootFS.Type == "" {
		st.img.RootFS.Type = "layers"
	}
	return st, nil
}

// takeTriggers makes the ONBUILD triggers of the stage's base config the
// stage's first steps, and removes them from its config: they are used up.
func (b *build) takeTriggers(st *stage, line int, base string) error {
	for _, expr := range st.img.Config.OnBuild {
		cmd, err := parseTrigger(expr)
		if err != nil {
			return b.errorf(line, "FROM %s: ONBUILD trigger %q: %v", base, expr, err)
		}
		st.onbuild = append(st.onbuild, cmd)
	}
	st.img.Config.OnBuild = nil
	return nil
}

func cloneImage(img dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	data, _ := json.Marshal(img)
	var out dockerspec.DockerOCIImage
	json.Unmarshal(data, &out)
	return out
}

// lowers are the snapshot directories the stage's tree is mounted from
// (cache.Store.Lowers).
func (b *build) lowers(st *stage) ([]string, error) {
	chain := st.img.RootFS.DiffIDs
	dirs := make([]string, 0, len(chain))
	seen := make(map[digest.Digest]bool, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		if seen[d] {
			continue
		}
		seen[d] = true
		b.mu.Lock()
		dir, ok := b.layerDirs[d]
		b.mu.Unlock()
		if !ok {
			one, err := b.store.Lowers(chain[i : i+1])
			if err != nil {
				return nil, err
			}
			if len(one) > 0 {
				dir = one[0]
			}
			b.mu.Lock()
			if b.layerDirs == nil {
				b.layerDirs = map[digest.Digest]string{}
			}
			b.layerDirs[d] = dir
			b.mu.Unlock()
		}
		if dir != "" {
			dirs = append(dirs, dir)
		}
	}
	return dirs, nil
}

// commit writes the stage's image config into the store. Its created time is
// the newest layer's, so that a fully cached build gives the same image ID.
func (b *build) commit(ctx context.Context, st *stage) (digest.Digest, error) {
	created := st.created.UTC()
	if st.epoch != nil {
		created = st.epoch.UTC()
	}
	st.img.Created = &created
	data, err := json.Marshal(st.img)
	if err != nil {
		return "", err
	}
	return b.store.PutImage(ctx, data, cache.ImageOptions{Compression: b.opts.Compression, OwnLayers: len(st.img.RootFS.DiffIDs) - st.baseLayers})
}

// parseTrigger parses an ONBUILD trigger as a Dockerfile instruction.
func parseTrigger(expr string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(expr))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("not one instruction")
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(cmd.Name()) {
	case "FROM", "ONBUILD", "MAINTAINER":
		return nil, fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(cmd.Name()))
	}
	return cmd, nil
}

// quoteArgs formats a command as BuildKit does in history: ["a" "b"].
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, " ") + "]"
}
