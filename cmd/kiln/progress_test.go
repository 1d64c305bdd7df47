package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// barrier answers the RUN steps of two stages (a and b) only once both
// have called, so a build through it passes only when the stages run side
// by side. release, when set, holds the answers until closed.
type barrier struct {
	srv     *httptest.Server
	arrived chan string
	release chan struct{}
}

func newBarrier(t *testing.T) *barrier {
	b := &barrier{arrived: make(chan string, 2), release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		b.arrived <- name
		select {
		case <-b.release:
			fmt.Fprint(w, "released-"+name)
			if name == "a" {
				fmt.Fprint(w, "\n")
			}
		case <-r.Context().Done():
		case <-time.After(5 * time.Minute): // a safety net, not a measure: a sequential build never gets here in time
			http.Error(w, "the other stage never came: stages did not run in parallel", http.StatusGatewayTimeout)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// both waits until both stages called; false when stop closes first or
// they never did.
func (b *barrier) both(stop <-chan struct{}) bool {
	for range 2 {
		select {
		case <-b.arrived:
		case <-stop:
			return false
		case <-time.After(5 * time.Minute): // a safety net, not a measure
			return false
		}
	}
	return true
}

// dockerfile is the two-stage build: stage a's step ends with output that
// has no final newline, as does b's (the barrier's answer to b).
func (b *barrier) dockerfile() string {
	return fmt.Sprintf(`FROM localhost/bb:latest AS a
RUN --network=host echo start-a; wget -q -O- %[1]s/a; printf 'no-newline-a'
RUN echo a2 >&2

FROM localhost/bb:latest as b
RUN --network=host echo start-b; wget -q -O- %[1]s/b

FROM localhost/bb:latest
COPY --from=a /bin/sh /a
COPY --from=b /bin/sh /b
`, b.srv.URL)
}

// stepNames are the steps of barrier.dockerfile as BuildKit names them.
var stepNames = []string{
	"[a 1/3] FROM localhost/bb:latest", "[a 3/3] RUN echo a2 >&2", "[b 1/2] FROM localhost/bb:latest",
	"[1/3] FROM localhost/bb:latest", "[2/3] COPY --from=a /bin/sh /a", "[3/3] COPY --from=b /bin/sh /b",
}

func stepRunA(b *barrier) string {
	return fmt.Sprintf("[a 2/3] RUN --network=host echo start-a; wget -q -O- %s/a; printf 'no-newline-a'", b.srv.URL)
}

func stepRunB(b *barrier) string {
	return fmt.Sprintf("[b 2/2] RUN --network=host echo start-b; wget -q -O- %s/b", b.srv.URL)
}

// TestBuildProgress builds a two-stage build whose stages must run in
// parallel with each progress mode, and a failing build in each mode.
func TestBuildProgress(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"f": "x"})
	build := func(b *barrier, args ...string) result {
		t.Helper()
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			if b.both(stop) {
				close(b.release)
			}
		}()
		defer func() { close(stop); <-stopped }()
		return e.run(b.dockerfile(), append([]string{"build", "--no-cache", "--allow", "network.host", "-f", "-"}, append(args, ctx)...)...)
	}

	t.Run("plain", func(t *testing.T) {
		b := newBarrier(t)
		r := build(b, "--progress=plain", "-t", "progress")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		vs, warnings := parsePlain(t, r.stderr)
		want := map[string][]string{
			stepRunA(b):               {"start-a", "released-a", "no-newline-a"},
			stepRunB(b):               {"start-b", "released-b"},
			"[a 3/3] RUN echo a2 >&2": {"a2"},
		}
		for _, name := range append(stepNames, stepRunA(b), stepRunB(b)) {
			v, ok := vs[name]
			if !ok {
				t.Errorf("no step %q in:\n%s", name, r.stderr)
				continue
			}
			if !regexp.MustCompile(`^DONE \d+\.\ds$`).MatchString(v.end) {
				t.Errorf("%s ended %q", name, v.end)
			}
			if got := strings.Join(v.logs, "|"); got != strings.Join(want[name], "|") {
				t.Errorf("%s printed %q, want %q", name, got, want[name])
			}
		}
		exp := vs["exporting to image"]
		if exp == nil || len(exp.logs) != 2 || !regexp.MustCompile(`^writing image sha256:[0-9a-f]{64}( \d+\.\ds)? done$`).MatchString(exp.logs[0]) ||
			!regexp.MustCompile(`^naming to docker.io/library/progress:latest( \d+\.\ds)? done$`).MatchString(exp.logs[1]) {
			t.Errorf("exporting to image: %+v", exp)
		}
		if len(warnings) != 1 || warnings[0] != "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 5)" {
			t.Errorf("warnings after the build: %q", warnings)
		}
		// A rebuild is cached, step by step.
		r = e.run(b.dockerfile(), "build", "--allow", "network.host", "--progress=plain", "-f", "-", ctx)
		vs, _ = parsePlain(t, r.stderr)
		for _, name := range []string{stepRunA(b), stepRunB(b), "[3/3] COPY --from=b /bin/sh /b"} {
			if v := vs[name]; r.code != 0 || v == nil || v.end != "CACHED" {
				t.Errorf("rebuild: %s: %+v\n%s", name, v, r.stderr)
			}
		}
	})

	t.Run("rawjson", func(t *testing.T) {
		b := newBarrier(t)
		r := build(b, "--progress", "rawjson")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		type vertex struct {
			Digest, Name, Error string
			Inputs              []string
			Started, Completed  *time.Time
			Cached              bool
		}
		vertexes := map[string]*vertex{}
		output := map[string]map[int]string{} // by vertex name, by stream
		var warnings []string
		for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			var s struct {
				Vertexes []*vertex
				Logs     []struct {
					Vertex    string
					Stream    int
					Data      []byte
					Timestamp time.Time
				}
				Warnings []struct {
					Level int
					Short []byte
					URL   string
				}
				Statuses []struct {
					ID, Vertex                    string
					Current                       int64
					Timestamp, Started, Completed *time.Time
				}
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			for _, v := range s.Vertexes {
				vertexes[v.Digest] = v
			}
			for _, l := range s.Logs {
				v, ok := vertexes[l.Vertex]
				if !ok {
					t.Fatalf("log of vertex %s before the vertex", l.Vertex)
				}
				if output[v.Name] == nil {
					output[v.Name] = map[int]string{}
				}
				output[v.Name][l.Stream] += string(l.Data)
			}
			for _, w := range s.Warnings {
				warnings = append(warnings, string(w.Short))
			}
		}
		byName := map[string]*vertex{}
		for _, v := range vertexes {
			for _, in := range v.Inputs {
				if vertexes[in] == nil {
					t.Errorf("vertex %s: input %s is no vertex", v.Name, in)
				}
			}
			if v.Started == nil || v.Completed == nil || v.Error != "" || v.Cached {
				t.Errorf("vertex %+v", v)
			}
			byName[v.Name] = v
		}
		for _, name := range append(stepNames, stepRunA(b), stepRunB(b), "exporting to image") {
			if byName[name] == nil {
				t.Errorf("no vertex %q", name)
			}
		}
		if got := output[stepRunA(b)][1]; got != "start-a\nreleased-a\nno-newline-a" {
			t.Errorf("stage a's RUN wrote %q", got)
		}
		if got := output[stepRunB(b)][1]; got != "start-b\nreleased-b" {
			t.Errorf("stage b's RUN wrote %q", got)
		}
		if got := output["[a 3/3] RUN echo a2 >&2"][2]; got != "a2\n" {
			t.Errorf("stderr of [a 3/3] %q", got)
		}
		if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "FromAsCasing:") {
			t.Errorf("warnings %q", warnings)
		}
	})

	t.Run("tty", func(t *testing.T) {
		kilntest.NeedTool(t, "tmux")
		b := newBarrier(t)
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		df := filepath.Join(t.TempDir(), "Dockerfile")
		os.WriteFile(df, []byte(b.dockerfile()), 0o644)
		sock := fmt.Sprintf("kiln-progress-%d", os.Getpid())
		tmux := func(args ...string) string {
			t.Helper()
			out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("tmux %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		script := fmt.Sprintf("KILN_TEST_MAIN=1 %s --root %s build --no-cache --allow network.host -f %s %s; echo EXIT=$?; sleep 600", self, e.root, df, ctx)
		tmux("new-session", "-d", "-x", "100", "-y", "40", script)
		t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
		// screen polls the pane until ok says the display got there.
		screen := func(what string, ok func(string) bool) string {
			t.Helper()
			deadline := time.Now().Add(5 * time.Minute) // a safety net: each wait is for an event
			for {
				s := tmux("capture-pane", "-p")
				if ok(s) {
					return s
				}
				if time.Now().After(deadline) {
					t.Fatalf("the display never showed %s:\n%s", what, s)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !b.both(nil) {
			t.Fatal("the build's two stages did not both reach the barrier")
		}
		// Both stages run: each step's line, with the output under it.
		s := screen("both running steps with their output", func(s string) bool {
			return strings.Contains(s, " => => # start-a") && strings.Contains(s, " => => # start-b")
		})
		if strings.Count(s, "[+] Building") != 1 || !strings.Contains(s, " => [a 2/3] RUN") || !strings.Contains(s, " => [b 2/2] RUN") {
			t.Errorf("while the stages run:\n%s", s)
		}
		tmux("resize-window", "-x", "60", "-y", "40")
		narrow := func(s string) bool {
			for _, l := range strings.Split(s, "\n") {
				if len([]rune(l)) > 59 {
					return false
				}
			}
			return strings.Contains(s, " => [a 2/3] RUN")
		}
		screen("a frame at the new width", narrow)
		close(b.release)
		s = screen("the build's end", func(s string) bool { return strings.Contains(s, "EXIT=") })
		frame, _, _ := strings.Cut(s, "\n\n") // the warnings follow, as plain text
		if !strings.Contains(s, "EXIT=0") || !narrow(frame) || strings.Contains(s, "\x1b") || strings.Count(s, "[+] Building") != 1 || !regexp.MustCompile(`\[\+\] Building \d+\.\ds \(10/10\) FINISHED`).MatchString(s) {
			t.Errorf("after the build:\n%s", s)
		}
		for _, name := range []string{"[a 2/3] RUN", "[b 2/2] RUN", "[2/3] COPY --from=a", "[3/3] COPY --from=b", "exporting to image"} {
			if strings.Count(s, " => "+name) != 1 {
				t.Errorf("%q not shown once:\n%s", name, s)
			}
		}
		if strings.Contains(s, "=> => # start-a") {
			t.Errorf("a finished step's output is still shown:\n%s", s)
		}
	})

	t.Run("failure", func(t *testing.T) {
		df := "FROM localhost/bb:latest\nRUN for i in $(seq 1 12); do echo line$i; done; printf 'last'; exit 3\n"
		for _, args := range [][]string{{"-q"}, {"--progress=plain"}, {"--progress=rawjson"}, {"--progress=tty"}} {
			r := e.run(df, append([]string{"build", "-f", "-"}, append(args, ctx)...)...)
			if r.code == 0 || r.stdout != "" {
				t.Fatalf("%v: exit %d, stdout %q", args, r.code, r.stdout)
			}
			block := regexp.MustCompile(`(?s)------\n > \[2/2\] RUN for i in \$\(seq 1 12\); do echo line\$i; done; printf 'last'; exit 3:\n(.*?)------\n`).FindStringSubmatch(r.stderr)
			var lines []string
			if block != nil {
				for _, l := range strings.Split(strings.TrimSuffix(block[1], "\n"), "\n") {
					lines = append(lines, regexp.MustCompile(`^\d+\.\d{3} `).ReplaceAllString(l, ""))
				}
			}
			if want := "line4 line5 line6 line7 line8 line9 line10 line11 line12 last"; strings.Join(lines, " ") != want {
				t.Errorf("%v: last lines %q, want %q:\n%s", args, lines, want, r.stderr)
			}
			if !strings.Contains(r.stderr, `Dockerfile:2: RUN for i in $(seq 1 12); do echo line$i; done; printf 'last'; exit 3: process "/bin/sh -c for i in $(seq 1 12); do echo line$i; done; printf 'last'; exit 3" did not complete successfully: exit code: 3`) {
				t.Errorf("%v: error:\n%s", args, r.stderr)
			}
		}
		if r := e.run("", "build", "-q", "--progress=plain", ctx); r.code == 0 || !strings.Contains(r.stderr, "cannot be used together") {
			t.Errorf("-q with --progress=plain: %d %q", r.code, r.stderr)
		}
		if r := e.run("", "build", "--progress=fancy", ctx); r.code == 0 || !strings.Contains(r.stderr, `invalid progress mode "fancy"`) {
			t.Errorf("--progress=fancy: %d %q", r.code, r.stderr)
		}
	})
}

// plainVertex is what the plain progress said of one vertex.
type plainVertex struct {
	logs []string // output lines, then finished statuses
	end  string   // DONE 1.2s, CACHED, ERROR: …
}

// parsePlain reads buildx's plain progress: blocks separated by a blank
// line, each starting with "#N NAME", every line of it "#N …" with the same
// N; output lines carry the seconds since the step started. It returns the
// vertices by name and the warnings printed after the build.
func parsePlain(t *testing.T, s string) (map[string]*plainVertex, []string) {
	t.Helper()
	byIndex := map[string]*plainVertex{}
	out := map[string]*plainVertex{}
	body, warnText, _ := strings.Cut(s, " found:\n")
	var warnings []string
	for _, l := range strings.Split(strings.Trim(warnText, "\n"), "\n") {
		if w, ok := strings.CutPrefix(l, " - "); ok {
			warnings = append(warnings, w)
		}
	}
	if i := strings.LastIndex(body, "\n\n"); warnText != "" && i >= 0 {
		body = body[:i] // the "N warnings found" line
	}
	logLine := regexp.MustCompile(`^\d+\.\d{3} (.*)$`)
	for _, block := range strings.Split(strings.TrimSpace(body), "\n\n") {
		lines := strings.Split(block, "\n")
		n, name, ok := strings.Cut(lines[0], " ")
		if !ok || !regexp.MustCompile(`^#\d+$`).MatchString(n) {
			t.Fatalf("block starts with %q:\n%s", lines[0], s)
		}
		v := byIndex[n]
		if v == nil {
			v = &plainVertex{}
			byIndex[n], out[name] = v, v
		}
		for _, l := range lines[1:] {
			rest, ok := strings.CutPrefix(l, n+" ")
			if !ok {
				t.Fatalf("line %q in the block of %s:\n%s", l, n, s)
			}
			if m := logLine.FindStringSubmatch(rest); m != nil {
				v.logs = append(v.logs, m[1])
			} else if rest == "CACHED" || strings.HasPrefix(rest, "DONE ") || strings.HasPrefix(rest, "ERROR: ") {
				v.end = rest
			} else {
				v.logs = append(v.logs, rest)
			}
		}
	}
	return out, warnings
}

// stepCached reports whether the step whose name starts with prefix was cached.
func stepCached(vs map[string]*plainVertex, prefix string) bool {
	for name, v := range vs {
		if strings.HasPrefix(name, prefix) && v.end == "CACHED" {
			return true
		}
	}
	return false
}

// TestBuildCheck: kiln build --check runs the build checks and builds
// nothing; it exits 1 on violations; # check= directives are honoured, and
// error=true fails an ordinary build before it builds.
func TestBuildCheck(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"f": "x"})
	bad := "FROM localhost/bb:latest as base\nENV DB_PASSWORD=x\nCOPY $SRC /f\nCMD run\nCMD [\"run\"]\nFROM base AS Final\nRUN touch /built\n"
	before := e.kiln("images", "-q")
	r := e.run(bad, "build", "--check", "-t", "checked", "-f", "-", ctx)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "Check complete, 6 warnings have been found!\n") {
		t.Fatalf("--check: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"WARN: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'as' and 'FROM' keywords' casing do not match\nDockerfile:1\n",
		"WARN: SecretsUsedInArgOrEnv - ", `(ENV "DB_PASSWORD")`,
		"WARN: UndefinedVar - ", "Usage of undefined variable '$SRC'",
		"WARN: JSONArgsRecommended - ", "\nDockerfile:4\n--------------------\n   2 |     ENV DB_PASSWORD=x\n   3 |     COPY $SRC /f\n   4 | >>> CMD run\n",
		"WARN: MultipleInstructionsDisallowed - ", "WARN: StageNameCasing - ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--check output lacks %q:\n%s", want, r.stdout)
		}
	}
	if after := e.kiln("images", "-q"); after != before {
		t.Errorf("--check built something: images %q, then %q", before, after)
	}
	skip := "# check=skip=FromAsCasing,SecretsUsedInArgOrEnv,UndefinedVar,JSONArgsRecommended,MultipleInstructionsDisallowed,StageNameCasing\n" + bad
	if r := e.run(skip, "build", "--check", "-f", "-", ctx); r.code != 0 || r.stdout != "Check complete, no warnings found.\n" {
		t.Errorf("--check with every rule skipped: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.run("# check=error=true\n"+bad, "build", "-t", "checked", "-f", "-", ctx)
	if r.code == 0 || !strings.Contains(r.stderr, "Dockerfile: build checks failed: lint violation found for rules:") || !strings.Contains(r.stderr, "FromAsCasing") || strings.Contains(r.stderr, "RUN touch") {
		t.Errorf("error=true: exit %d\n%s", r.code, r.stderr)
	}
	if after := e.kiln("images", "-q"); after != before {
		t.Errorf("the build with error=true built something: images %q, then %q", before, after)
	}
}
