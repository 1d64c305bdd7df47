package builder

import (
	"strings"
	"testing"
)

// Moved from cmd/kiln/stages_test.go: they test how the builder runs
// stages and steps, not the command line.

// TestTargetBuildsOnlyWhatItNeeds: --target builds the stage and its
// dependencies; a broken stage nothing needs is never built.
func TestTargetBuildsOnlyWhatItNeeds(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	df := `FROM localhost/bb:latest AS a
RUN echo a > /a
FROM localhost/bb:latest AS broken
RUN exit 7
FROM a AS c
RUN cat /a > /c
FROM broken
`
	r := e.build(df, Options{Target: "c", Tags: []string{"c"}})
	if r.err != nil {
		t.Fatalf("--target c: %v", r.err)
	}
	if strings.Contains(r.progress, "exit 7") {
		t.Errorf("the broken stage was built:\n%s", r.progress)
	}
	if r := e.build(df, Options{Target: "nope"}); r.err == nil || !strings.Contains(r.err.Error(), `target stage "nope" could not be found`) {
		t.Errorf("--target nope: %v", r.err)
	}
	if r := e.build(df, Options{}); r.err == nil || !strings.Contains(r.err.Error(), "Dockerfile:4: RUN exit 7") {
		t.Errorf("default target (needs broken): %v", r.err)
	}
}

// TestHeredocs: RUN and COPY heredocs as BuildKit runs them, with the
// quoting rules that decide expansion.
func TestHeredocs(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	r := e.mustBuild("FROM localhost/bb:latest\n"+
		"ARG NAME=world\n"+
		"RUN <<EOF\necho \"plain $NAME\" > /plain\necho second >> /plain\nEOF\n"+
		"RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /script\nEOF\n"+
		"RUN cat > /expanded <<EOF\nhello $NAME\nEOF\n"+
		"RUN cat > /literal <<'EOF'\nhello $NAME\nEOF\n"+
		"RUN cat > /tabs <<-EOF\n\t\tindented\n\tEOF\n"+
		"RUN cat /dev/null - > /two <<A && cat >> /two <<B\nfirst\nA\nsecond\nB\n"+
		"COPY <<EOF /copied\nname is $NAME\nEOF\n"+
		"COPY <<'EOF' /copied-literal\nname is $NAME\nEOF\n"+
		"COPY <<one <<two /dir/\n1\none\n2\ntwo\n", Options{Tags: []string{"heredoc"}})
	want := map[string]string{
		"/plain":          "plain world\nsecond\n",
		"/script":         "script /dev/pipes/EOF\n",
		"/expanded":       "hello world\n",
		"/literal":        "hello $NAME\n",
		"/tabs":           "indented\n",
		"/two":            "first\nsecond\n",
		"/copied":         "name is world\n",
		"/copied-literal": "name is $NAME\n",
		"/dir/one":        "1\n",
		"/dir/two":        "2\n",
	}
	files := e.imageFiles(r.id)
	for path, content := range want {
		if got, ok := files[path]; !ok || got != content {
			t.Errorf("%s = %q (present %v), want %q", path, got, ok, content)
		}
	}
}

// TestOnbuild: a base image's ONBUILD triggers run when it is used as a base.
func TestOnbuild(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	e.mustBuild("FROM localhost/bb:latest\nONBUILD RUN echo triggered > /trigger\nONBUILD ENV FROM_TRIGGER=yes\n", Options{Tags: []string{"onbuild-base"}})
	child := e.mustBuild("FROM onbuild-base\nRUN cat /trigger > /seen\n", Options{Tags: []string{"onbuild-child"}})
	if got := e.catFile(child.id, "/seen"); got != "triggered\n" {
		t.Errorf("/seen = %q", got)
	}
	cfg := e.image(child.id).Config
	if cfg.OnBuild != nil || !strings.Contains(strings.Join(cfg.Env, " "), "FROM_TRIGGER=yes") {
		t.Errorf("child config: OnBuild %q, Env %q", cfg.OnBuild, cfg.Env)
	}
}

// TestCopyParentsAndExclude: COPY --parents keeps the sources' directories
// (below a "/./" pivot when there is one) and --exclude leaves files out, as
// BuildKit's reference describes them.
func TestCopyParentsAndExclude(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	e.write(map[string]string{
		"x/a.txt":        "a\n",
		"y/b.txt":        "b\n",
		"src/pkg/f.go":   "package pkg\n",
		"docs/top.md":    "top\n",
		"docs/keep.txt":  "keep\n",
		"docs/sub/in.md": "in\n",
	})
	r := e.mustBuild("FROM localhost/bb:latest\n"+
		"COPY --parents x/a.txt y/b.txt /p/\n"+
		"COPY --parents ./src/./pkg/f.go /q/\n"+
		"COPY --parents x /r/\n"+
		"COPY --exclude=*.md docs /d/\n"+
		"COPY --exclude=**/*.md docs /e/\n"+
		"COPY --exclude=b.* x/a.txt y/b.txt /f/\n", Options{Tags: []string{"parents"}})
	files := e.imageFiles(r.id)
	for path, want := range map[string]string{
		"/p/x/a.txt": "a\n", "/p/y/b.txt": "b\n", "/q/pkg/f.go": "package pkg\n", "/r/x/a.txt": "a\n",
		"/d/keep.txt": "keep\n", "/d/sub/in.md": "in\n", "/e/keep.txt": "keep\n", "/f/a.txt": "a\n",
	} {
		if got, ok := files[path]; !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", path, got, ok, want)
		}
	}
	for _, absent := range []string{"/d/top.md", "/e/top.md", "/e/sub/in.md", "/f/b.txt", "/q/src"} {
		if _, ok := files[absent]; ok {
			t.Errorf("%s should not be in the image", absent)
		}
	}
}
