package builder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// run plans the build with a dry pass over the stages the target needs,
// builds them (independent stages in parallel) and commits the target.
func (b *build) run(ctx context.Context) (digest.Digest, error) {
	meta := &stage{lex: shell.NewLex(b.df.escape)}
	// Global ARGs: usable in FROM lines; a stage sees them only when it
	// declares them again. The predefined platform ARGs come first.
	meta.args = predefinedArgs(b.target())
	for i := range b.df.metaArgs {
		if err := b.declareArgs(meta, &b.df.metaArgs[i]); err != nil {
			return "", err
		}
	}
	target, err := b.targetStage()
	if err != nil {
		return "", err
	}
	// The dry pass: every needed stage is dispatched without side effects,
	// so that bad input (an expansion, a missing or outside COPY source, a
	// missing base image, an unsupported flag) fails the build before it
	// writes anything, and the stages each one needs are known.
	p := &plan{deps: map[int][]int{}, dry: map[int]*stage{}}
	b.dry = true
	if _, err := b.planStage(ctx, p, meta, target); err != nil {
		return "", err
	}
	b.dry = false
	b.warnUnusedArgs(meta, p)
	// Expansion rewrites the parsed instructions in place: the real pass
	// starts from a fresh parse.
	if b.df, err = parseDockerfile(b.df.name, b.data); err != nil {
		return "", err
	}
	st, err := b.buildParallel(ctx, p, meta, target)
	if err != nil {
		return "", err
	}
	b.export = b.rep.start("", "exporting to image")
	started := time.Now()
	applyLabels(st, b.opts.Labels)
	id, err := b.commit(ctx, st)
	if err != nil {
		return "", err
	}
	b.export.status("writing image "+id.String(), started)
	return id, nil
}

// plan is what the dry pass learns: the stages each needed stage depends on
// (FROM another stage, COPY --from, RUN --mount from=), and its dry state.
type plan struct {
	deps map[int][]int
	dry  map[int]*stage
}

// targetStage is the index of --target, or the last stage.
func (b *build) targetStage() (int, error) {
	if b.opts.Target == "" {
		return len(b.df.stages) - 1, nil
	}
	for i, s := range b.df.stages {
		if strings.EqualFold(s.Name, b.opts.Target) {
			return i, nil
		}
	}
	return 0, &Error{File: b.df.name, Err: fmt.Errorf("target stage %q could not be found", b.opts.Target)}
}

// stageIndex finds the stage a FROM or --from names: a stage name (case
// insensitive) or a stage number, defined before stage before.
func (b *build) stageIndex(name string, before int) (int, bool) {
	for j := 0; j < before; j++ {
		if b.df.stages[j].Name != "" && strings.EqualFold(b.df.stages[j].Name, name) {
			return j, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

// planStage dry-runs stage i (and, first, the stages it depends on).
func (b *build) planStage(ctx context.Context, p *plan, meta *stage, i int) (*stage, error) {
	if st, ok := p.dry[i]; ok {
		return st, nil
	}
	s := b.df.stages[i]
	built := map[string]*stage{}
	if base, err := meta.expand(s.BaseName); err == nil {
		base, _ = b.named(base)
		// FROM takes stage names (not numbers, which COPY --from takes).
		if _, isNumber := strconv.Atoi(base); isNumber != nil {
			if j, ok := b.stageIndex(base, i); ok {
				dep, err := b.planStage(ctx, p, meta, j)
				if err != nil {
					return nil, err
				}
				built[strings.ToLower(base)] = dep
				p.deps[i] = append(p.deps[i], j)
			}
		}
	}
	st, err := b.newStage(ctx, s, built, meta)
	if err != nil {
		return nil, err
	}
	st.index = i
	st.plan = p
	for _, cmd := range st.onbuild {
		if _, err := b.dispatch(ctx, st, meta, cmd); err != nil {
			return nil, b.wrap(lineOf(&s), fmt.Errorf("ONBUILD %s: %w", commandText(cmd), err))
		}
	}
	for _, cmd := range s.Commands {
		if _, err := b.dispatch(ctx, st, meta, cmd); err != nil {
			return nil, b.wrap(lineOf(cmd), err)
		}
	}
	p.dry[i] = st
	return st, nil
}

// needStage is called by steps during the dry pass when they use another
// stage (COPY --from, RUN --mount from=): the stage is planned and becomes a
// dependency of st.
func (b *build) needStage(ctx context.Context, st *stage, j int) error {
	if !b.dry || st.plan == nil {
		return nil
	}
	if _, err := b.planStage(ctx, st.plan, st.meta, j); err != nil {
		return err
	}
	st.plan.deps[st.index] = append(st.plan.deps[st.index], j)
	return nil
}

// buildParallel builds the planned stages, each as soon as the stages it
// depends on are built: independent stages run side by side. The first
// failure cancels the others.
func (b *build) buildParallel(ctx context.Context, p *plan, meta *stage, target int) (*stage, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := map[int]chan struct{}{}
	for i := range p.dry {
		done[i] = make(chan struct{})
	}
	var (
		mu       sync.Mutex
		results  = map[int]*stage{}
		firstErr error
		wg       sync.WaitGroup
	)
	b.results = func(j int) *stage {
		mu.Lock()
		defer mu.Unlock()
		return results[j]
	}
	for i := range p.dry {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, d := range p.deps[i] {
				select {
				case <-done[d]:
				case <-ctx.Done():
					return
				}
				if b.results(d) == nil {
					return // the dependency failed
				}
			}
			st, err := b.buildStage(ctx, p, meta, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel(err)
				}
				return
			}
			results[i] = st
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := context.Cause(ctx); err != nil && results[target] == nil {
		return nil, err
	}
	return results[target], nil
}

// buildStage builds one stage whose dependencies are built. Its steps are
// vertices named as BuildKit names them: "[NAME i/n] TEXT", where FROM an
// image, RUN, COPY, ADD and WORKDIR count (ONBUILD triggers among them) and
// the other instructions, which only change the config, are no step.
func (b *build) buildStage(ctx context.Context, p *plan, meta *stage, i int) (*stage, error) {
	s := b.df.stages[i]
	built := map[string]*stage{}
	for _, d := range p.deps[i] {
		if name := b.df.stages[d].Name; name != "" {
			built[strings.ToLower(name)] = b.results(d)
		}
	}
	started := time.Now()
	st, err := b.newStage(ctx, s, built, meta)
	if err != nil {
		return nil, err
	}
	st.index = i
	total := 0
	for _, cmd := range append(slices.Clone(st.onbuild), s.Commands...) {
		if isStep(cmd) {
			total++
		}
	}
	base, _ := meta.expand(s.BaseName)
	fromImage := !strings.EqualFold(base, "scratch") && built[strings.ToLower(base)] == nil
	if fromImage {
		total++
	}
	n := 0
	name := func(text string) string {
		n++
		prefix := "["
		if s.Name != "" {
			prefix += s.Name + " "
		}
		return fmt.Sprintf("%s%*d/%d] %s", prefix, len(strconv.Itoa(total)), n, total, text)
	}
	key := "stage " + strconv.Itoa(i)
	var last digest.Digest
	if fromImage {
		v := b.rep.startAt(started, key, name("FROM "+base))
		v.done(false, nil)
		last = v.digest
	}
	runStep := func(cmd instructions.Command, text string, line int) error {
		if !isStep(cmd) {
			_, err := b.dispatch(ctx, st, meta, cmd)
			return err
		}
		st.stepText = name(text)
		var inputs []digest.Digest
		if last != "" {
			inputs = []digest.Digest{last}
		}
		st.vtx = b.rep.start(key, st.stepText, inputs...)
		defer func() { st.vtx = nil }()
		last = st.vtx.digest
		hit, err := b.dispatch(ctx, st, meta, cmd)
		st.vtx.done(hit, err)
		if err != nil {
			err = b.wrap(line, err)
			var e *Error
			if errors.As(err, &e) && e.Step == "" {
				e.Step, e.Logs = st.stepText, st.vtx.lastLines()
			}
			return err
		}
		if hit && b.opts.ExplainCache != nil {
			fmt.Fprintf(b.opts.ExplainCache, "%s: cache hit\n", st.stepText)
		}
		return nil
	}
	for _, cmd := range st.onbuild {
		if err := runStep(cmd, "ONBUILD "+commandText(cmd), lineOf(&s)); err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Err = fmt.Errorf("ONBUILD %s: %w", commandText(cmd), e.Err)
			}
			return nil, err
		}
	}
	for i, cmd := range s.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st.runsLeft = 0
		for _, next := range s.Commands[i+1:] {
			if _, ok := next.(*instructions.RunCommand); ok {
				st.runsLeft++
			}
		}
		if err := runStep(cmd, commandText(cmd), lineOf(cmd)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// isStep reports whether cmd is a step of its own in the build's progress
// (it changes the filesystem), as BuildKit counts them.
func isStep(cmd instructions.Command) bool {
	switch cmd.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
		return true
	}
	return false
}

// predefinedArgs are the ARGs BuildKit defines for every build: the target
// and build (the host's) platforms.
func predefinedArgs(target ocispec.Platform) []arg {
	vals := platformArgs(target, hostPlatform())
	out := make([]arg, len(vals))
	for i, kv := range vals {
		v := kv[1]
		out[i] = arg{key: kv[0], value: &v, predefined: true}
	}
	return out
}

// warnUnusedArgs warns, as BuildKit does, about --build-arg values no built
// stage (nor a FROM line) declares.
func (b *build) warnUnusedArgs(meta *stage, p *plan) {
	used := map[string]bool{}
	for _, k := range proxyArgs {
		used[k] = true
	}
	for _, a := range meta.args {
		used[a.key] = true
	}
	for _, st := range p.dry {
		for _, a := range st.args {
			used[a.key] = true
		}
	}
	var unused []string
	for k := range b.opts.BuildArgs {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		b.warnf("one or more build-args %v were not consumed", unused)
	}
}
