package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"

	"github.com/kiln-build/kiln/cache"
)

// ErrLint is the class of a build stopped by its build checks: `kiln build
// --check` found violations, or `# check=error=true` made warnings errors.
var ErrLint = errors.New("build checks failed")

// LintWarning is one violation of a build check (BuildKit's rules, from its
// frontend/dockerfile/linter package).
type LintWarning struct {
	Rule        string // "FromAsCasing"
	Description string
	URL         string
	Message     string
	Line        int // 0 when the rule names no line
}

// Short is the warning on one line, as buildx prints it after a build:
// "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)".
func (w LintWarning) Short() string {
	return linter.LintFormatShort(w.Rule, w.Message, w.Line)
}

// lintDockerfile runs BuildKit's build checks over every stage of a
// Dockerfile, with the `# check=skip=…;error=…` directive honoured. The
// checks of BuildKit's parser and instructions packages run there (through
// their linter argument); those BuildKit's LLB converter runs are run here
// at the same points, with the rules' own names and messages. baseEnv is
// the ENV of a FROM image when known. err is ErrLint when the directive
// says error=true and a check failed.
func lintDockerfile(data []byte, buildArgs map[string]string, baseEnv func(name string) ([]string, bool)) ([]LintWarning, error) {
	var out []LintWarning
	directive, _, _, _ := parser.ParseDirective("check", data)
	cfg, err := linter.ParseLintOptions(directive)
	if err != nil {
		return nil, fmt.Errorf("parse check options: %w", err)
	}
	cfg.Warn = func(rule, description, url, msg string, location []parser.Range) {
		w := LintWarning{Rule: rule, Description: description, URL: url, Message: msg}
		if len(location) > 0 {
			w.Line = location[0].Start.Line
		}
		out = append(out, w)
	}
	lint := linter.New(cfg)
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	lintStageNames(stages, lint)
	lintCasing(stages, lint)
	l := &linting{lint: lint, lex: shell.NewLex(res.EscapeToken), buildArgs: buildArgs, baseEnv: baseEnv, stages: map[string]*lintEnv{}}
	global := &lintEnv{vals: map[string]string{}, declared: map[string]bool{}}
	for _, a := range predefinedArgs(hostPlatform()) {
		global.set(a.key, *a.value)
	}
	for i := range metaArgs {
		l.arg(global, &metaArgs[i], nil)
	}
	for i := range stages {
		l.stage(&stages[i], global)
	}
	if err := lint.Error(); err != nil {
		return out, fmt.Errorf("%w: %v", ErrLint, err)
	}
	return out, nil
}

// linting is the state of lintDockerfile's walk over the stages.
type linting struct {
	lint      *linter.Linter
	lex       *shell.Lex
	buildArgs map[string]string
	baseEnv   func(string) ([]string, bool)
	stages    map[string]*lintEnv // by lowercase stage name
}

// lintEnv is what a stage has defined: ENV and ARG values, and the ARGs
// declared (with or without a value).
type lintEnv struct {
	vals     map[string]string
	order    []string
	declared map[string]bool
	shellSet bool
}

func (e *lintEnv) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vals[k] = v
}

func (e *lintEnv) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *lintEnv) Keys() []string              { return slices.Clone(e.order) }

func (e *lintEnv) clone() *lintEnv {
	c := &lintEnv{vals: map[string]string{}, declared: map[string]bool{}, shellSet: e.shellSet}
	for _, k := range e.order {
		c.set(k, e.vals[k])
	}
	for k := range e.declared {
		c.declared[k] = true
	}
	return c
}

// expand expands word for cmd, reporting the variables it uses undefined (UndefinedVar).
func (l *linting) expand(lint *linter.Linter, cmd instructions.Command, env *lintEnv, word string, raw bool) (string, error) {
	lex := *l.lex
	lex.SkipProcessQuotes = raw
	bounded := &boundedEnv{EnvGetter: env} // an expansion bomb stays small here too
	s, unmatched, err := lex.ProcessWord(word, bounded)
	err = bounded.check(err)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range unmatched {
			if !yield(k) {
				return
			}
		}
	}) {
		if env.declared[name] {
			continue
		}
		match, _ := suggest.Search(name, env.Keys(), true)
		lint.Run(&linter.RuleUndefinedVar, cmd.Location(), linter.RuleUndefinedVar.Format(name, match))
	}
	return s, err
}

func (l *linting) stage(s *instructions.Stage, global *lintEnv) {
	base, _, _ := l.lex.ProcessWord(s.BaseName, global)
	var env *lintEnv
	if parent, ok := l.stages[strings.ToLower(base)]; ok {
		env = parent.clone()
	} else {
		env = &lintEnv{vals: map[string]string{}, declared: map[string]bool{}}
		vars, known := []string(nil), false
		if l.baseEnv != nil && !strings.EqualFold(base, "scratch") {
			vars, known = l.baseEnv(base)
		}
		if !known {
			vars = []string{defaultPath}
		}
		for _, kv := range vars {
			k, v, _ := strings.Cut(kv, "=")
			env.set(k, v)
		}
	}
	var cmdOnce, entrypointOnce, healthcheckOnce []parser.Range
	workdirSet := false
	for _, cmd := range s.Commands {
		lint := l.lint.WithMergedConfigFromComments(cmd.Comments())
		if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
			if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
				_ = ex.Expand(func(w string) (string, error) { return l.expand(lint, cmd, env, w, false) })
			}
		}
		if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
			_ = ex.ExpandRaw(func(w string) (string, error) { return l.expand(lint, cmd, env, w, true) })
		}
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				if kv.NoDelim {
					lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
				}
				lintSecretKey(lint, "ENV", kv.Key, c.Location())
				env.set(kv.Key, kv.Value)
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				if kv.NoDelim {
					lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
				}
			}
		case *instructions.ArgCommand:
			l.arg(env, c, global)
		case *instructions.CmdCommand:
			usedOnce(lint, c, &cmdOnce)
			if c.PrependShell && !env.shellSet {
				lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
			}
		case *instructions.EntrypointCommand:
			usedOnce(lint, c, &entrypointOnce)
			if c.PrependShell && !env.shellSet {
				lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
			}
		case *instructions.HealthCheckCommand:
			usedOnce(lint, c, &healthcheckOnce)
		case *instructions.ShellCommand:
			env.shellSet = true
		case *instructions.WorkdirCommand:
			if !workdirSet && !path.IsAbs(c.Path) {
				lint.Run(&linter.RuleWorkdirRelativePath, c.Location(), linter.RuleWorkdirRelativePath.Format(c.Path))
			}
			workdirSet = true
		}
	}
	if s.Name != "" {
		l.stages[strings.ToLower(s.Name)] = env
	}
}

// arg declares the ARGs of c in env: the --build-arg value, else the
// default, else (in a stage) the global ARG's value.
func (l *linting) arg(env *lintEnv, c *instructions.ArgCommand, global *lintEnv) {
	lint := l.lint.WithMergedConfigFromComments(c.Comments())
	for _, kv := range c.Args {
		if global != nil {
			lintSecretKey(lint, "ARG", kv.Key, c.Location())
		}
		env.declared[kv.Key] = true
		if v, ok := l.buildArgs[kv.Key]; ok {
			env.set(kv.Key, v)
		} else if kv.Value != nil {
			v, _ := l.expand(lint, c, env, *kv.Value, false)
			env.set(kv.Key, v)
		} else if global != nil {
			if v, ok := global.vals[kv.Key]; ok {
				env.set(kv.Key, v)
			}
		}
	}
}

// usedOnce reports an instruction that only counts once in a stage used
// again: at the place of the one that is ignored.
func usedOnce(lint *linter.Linter, c instructions.Command, prev *[]parser.Range) {
	if *prev != nil {
		lint.Run(&linter.RuleMultipleInstructionsDisallowed, *prev, linter.RuleMultipleInstructionsDisallowed.Format(c.Name()))
	}
	*prev = c.Location()
}

// Compiled when first used, not at every kiln process's start.
var (
	secretKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	})
	notSecretKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`) })
)

// lintSecretKey reports an ARG or ENV whose name says it holds a secret:
// its value would stay in the image (SecretsUsedInArgOrEnv).
func lintSecretKey(lint *linter.Linter, instruction, key string, location []parser.Range) {
	if secretKey().MatchString(key) && !notSecretKey().MatchString(key) {
		lint.Run(&linter.RuleSecretsUsedInArgOrEnv, location, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

var reservedStageNames = []string{"context", "scratch"}

func lintStageNames(stages []instructions.Stage, lint *linter.Linter) {
	seen := map[string]bool{}
	for _, s := range stages {
		if s.Name == "" {
			continue
		}
		if slices.Contains(reservedStageNames, s.Name) {
			lint.Run(&linter.RuleReservedStageName, s.Location, linter.RuleReservedStageName.Format(s.Name))
		}
		if seen[s.Name] {
			lint.Run(&linter.RuleDuplicateStageName, s.Location, linter.RuleDuplicateStageName.Format(s.Name))
		}
		seen[s.Name] = true
	}
}

// lintCasing reports instructions whose casing is mixed or differs from
// the Dockerfile's majority (ConsistentInstructionCasing).
func lintCasing(stages []instructions.Stage, lint *linter.Linter) {
	consistent := func(s string) bool { return s == strings.ToLower(s) || s == strings.ToUpper(s) }
	lower, upper := 0, 0
	count := func(name string) {
		if consistent(name) {
			if name == strings.ToLower(name) {
				lower++
			} else {
				upper++
			}
		}
	}
	for _, s := range stages {
		count(s.OrigCmd)
		for _, c := range s.Commands {
			count(c.Name())
		}
	}
	check := func(name string, location []parser.Range) {
		want := ""
		if lower > upper && strings.ToLower(name) != name {
			want = "lowercase"
		} else if lower <= upper && strings.ToUpper(name) != name {
			want = "uppercase"
		}
		if want != "" {
			lint.Run(&linter.RuleConsistentInstructionCasing, location, linter.RuleConsistentInstructionCasing.Format(name, want))
		}
	}
	for _, s := range stages {
		check(s.OrigCmd, s.Location)
		for _, c := range s.Commands {
			check(c.Name(), c.Location())
		}
	}
}

// storeEnv looks up the ENV of a FROM image in the store, for UndefinedVar.
func storeEnv(s *cache.Store) func(string) ([]string, bool) {
	return func(name string) ([]string, bool) {
		id, err := s.Resolve(name)
		if err != nil {
			return nil, false
		}
		img, _, err := s.Image(id)
		if err != nil {
			return nil, false
		}
		env := img.Config.Env
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
			env = append([]string{defaultPath}, env...)
		}
		return env, true
	}
}

// CheckResult is what `kiln build --check` found in a Dockerfile.
type CheckResult struct {
	File     string
	Source   []byte
	Warnings []LintWarning
}

// Check runs the build checks on the Dockerfile of opts without building
// anything (kiln build --check). s, when not nil, is where FROM images'
// ENV is looked up.
func Check(s *cache.Store, opts Options) (*CheckResult, error) {
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return nil, err
	}
	data, name, err := readDockerfile(opts.Dockerfile, ctxDir, opts.Stdin)
	if err != nil {
		return nil, err
	}
	var env func(string) ([]string, bool)
	if s != nil {
		env = storeEnv(s)
	}
	warnings, err := lintDockerfile(data, opts.BuildArgs, env)
	if err != nil && !errors.Is(err, ErrLint) {
		return nil, locate(name, err)
	}
	return &CheckResult{File: name, Source: data, Warnings: warnings}, nil
}

// Write prints the result as buildx --check does: each warning with its
// rule, link, message and the Dockerfile's lines around it.
func (r *CheckResult) Write(w io.Writer) {
	var b strings.Builder
	switch n := len(r.Warnings); n {
	case 0:
		b.WriteString("Check complete, no warnings found.\n")
	case 1:
		b.WriteString("Check complete, 1 warning has been found!\n")
	default:
		fmt.Fprintf(&b, "Check complete, %d warnings have been found!\n", n)
	}
	lines := strings.Split(string(r.Source), "\n")
	for _, x := range r.Warnings {
		fmt.Fprintf(&b, "\nWARN: %s - %s\n%s\n", x.Rule, x.URL, x.Message)
		if x.Line < 1 || x.Line > len(lines) {
			continue
		}
		fmt.Fprintf(&b, "%s:%d\n--------------------\n", r.File, x.Line)
		for i := max(1, x.Line-2); i <= min(len(lines), x.Line+2); i++ {
			mark := "    "
			if i == x.Line {
				mark = ">>> "
			}
			fmt.Fprintf(&b, " %3d | %s%s\n", i, mark, lines[i-1])
		}
		b.WriteString("--------------------\n")
	}
	io.WriteString(w, b.String())
}
