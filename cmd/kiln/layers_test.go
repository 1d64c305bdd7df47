package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/imageview"
	"github.com/kiln-build/kiln/internal/kilntest"
)

// TestLayers builds two images (one with wasted bytes, one with a bigger
// COPY) and checks every view of kiln layers on them: the table and its
// agreement with history, images and system df; --layer, --diff, --tree;
// --compare; the CI gate, .dive-ci and build --check-layers; JSON; the
// HTML report in headless Chromium; the TUI in tmux.
func TestLayers(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	dockerfile := "FROM localhost/bb:latest\n" +
		"RUN head -c 400000 /dev/zero > /big && echo hi > /small && mkdir /d && echo one > /d/f\n" +
		"ENV X=1\n" +
		"RUN rm /big && chmod 600 /small && echo two > /d/f\n" +
		"COPY f /f\n"
	ctxA := writeContext(t, map[string]string{"Dockerfile": dockerfile, "f": "small file"})
	ctxB := writeContext(t, map[string]string{"Dockerfile": dockerfile, "f": strings.Repeat("x", 50000)})
	e.kiln("build", "-q", "-t", "layers-a", ctxA)
	e.kiln("build", "-q", "-t", "layers-b", ctxB)

	var a imageview.Analysis
	if err := json.Unmarshal([]byte(e.kiln("layers", "--format", "json", "layers-a")), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Layers) != 5 || a.Layers[2].CreatedBy != "ENV X=1" || a.Layers[2].DiffID != "" || a.Layers[1].Files != nil {
		t.Fatalf("layers: %+v", a.Layers)
	}
	// /big, /small ("hi\n") and /d/f ("one\n") of layer 1 are wasted.
	if a.WastedBytes != 400000+3+4 || a.Layers[1].WastedBytes != a.WastedBytes || a.Wasted[0].Path != "/big" {
		t.Errorf("wasted %d (layer 1: %d), top %+v", a.WastedBytes, a.Layers[1].WastedBytes, a.Wasted)
	}
	if want := 1 - float64(a.WastedBytes)/float64(a.Size); a.Efficiency != want {
		t.Errorf("efficiency %v, want %v", a.Efficiency, want)
	}

	t.Run("sizes agree", func(t *testing.T) {
		// history: newest first, SIZE the 4th column.
		hist := strings.Split(strings.TrimSpace(e.kiln("history", "--no-trunc", "layers-a")), "\n")[1:]
		cols := regexp.MustCompile(`\s{3,}`)
		for i, row := range hist {
			l := a.Layers[len(a.Layers)-1-i]
			if got := cols.Split(row, -1)[3]; got != humanSize(l.Size) {
				t.Errorf("layer %d: history says %s, layers %s (%d)", l.Index, got, humanSize(l.Size), l.Size)
			}
		}
		want := humanSize(a.Size)
		for _, out := range []string{e.kiln("images"), e.kiln("system", "df", "-v")} {
			found := false
			for _, row := range strings.Split(out, "\n") {
				if f := strings.Fields(row); len(f) > 0 && f[0] == "layers-a" {
					found = true
					if !strings.Contains(row+"   ", "   "+want+"   ") {
						t.Errorf("size %s expected in %q", want, row)
					}
				}
			}
			if !found {
				t.Errorf("no layers-a row in\n%s", out)
			}
		}
		table := e.kiln("layers", "layers-a")
		for _, want := range []string{"INDEX   SIZE", "Total size:          " + want, "Efficiency:", "Biggest wasted files:", "400kB    1        /big"} {
			if !strings.Contains(table, want) {
				t.Errorf("table lacks %q:\n%s", want, table)
			}
		}
	})

	t.Run("one layer", func(t *testing.T) {
		var l imageview.Layer
		if err := json.Unmarshal([]byte(e.kiln("layers", "layers-a", "--layer", "3", "--format", "json")), &l); err != nil {
			t.Fatal(err)
		}
		got := map[string]imageview.File{}
		for _, f := range l.Files {
			got[f.Path] = f
		}
		if f := got["/big"]; f.Change != "D" || f.Size != 400000 {
			t.Errorf("/big: %+v", f)
		}
		if f := got["/small"]; f.Change != "C" || f.Mode != "-rw-------" || f.Size != 3 {
			t.Errorf("/small: %+v", f)
		}
		if l.Added != 0 || l.Changed != 2 || l.Removed != 1 || len(l.Files) != 3 {
			t.Errorf("layer 3: %+v", l)
		}
		// --diff leaves out the chmod.
		out := e.kiln("layers", "layers-a", "--layer", "3", "--diff")
		if !strings.Contains(out, "/big") || !strings.Contains(out, "/d/f") || strings.Contains(out, "/small") {
			t.Errorf("--diff:\n%s", out)
		}
		// Biggest first.
		if lines := strings.Split(e.kiln("layers", "layers-a", "--layer", "3"), "\n"); !strings.HasPrefix(lines[1], "D") || !strings.Contains(lines[1], "/big") {
			t.Errorf("--layer 3:\n%s", strings.Join(lines, "\n"))
		}
		tree := e.kiln("layers", "layers-a", "--layer", "1", "--tree", "--depth", "1")
		if !strings.Contains(tree, "400kB  ├── big") || !strings.Contains(tree, "d/") || strings.Contains(tree, "── f") {
			t.Errorf("--tree --depth 1:\n%s", tree)
		}
		r := e.run("", "layers", "layers-a", "--layer", "9")
		if r.code != 1 || !strings.Contains(r.stderr, "has 5 history entries (0-4): no layer 9") {
			t.Errorf("--layer 9: %d %s", r.code, r.stderr)
		}
		if r := e.run("", "layers", "layers-a", "--tree"); r.code != 1 || !strings.Contains(r.stderr, "--layer") {
			t.Errorf("--tree without --layer: %d %s", r.code, r.stderr)
		}
	})

	t.Run("compare", func(t *testing.T) {
		var c imageview.Comparison
		if err := json.Unmarshal([]byte(e.kiln("layers", "--compare", "layers-a", "layers-b", "--format", "json")), &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Files) != 1 || c.Files[0].Path != "/f" || c.Files[0].Change != "C" || c.Files[0].Delta != 50000-10 || c.Grew != 49990 || c.SizeB-c.SizeA != 49990 {
			t.Errorf("compare: %+v", c)
		}
		if out := e.kiln("layers", "--compare", "layers-a", "layers-b"); !strings.Contains(out, "Difference: +50kB") || !regexp.MustCompile(`\nC +\+50kB +10B +50kB +/f\n`).MatchString(out) {
			t.Errorf("compare:\n%s", out)
		}
	})

	t.Run("ci", func(t *testing.T) {
		r := e.run("", "layers", "layers-a", "--ci")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 1 || len(lines) != 2 || !strings.Contains(lines[0], "FAIL") || !strings.Contains(lines[0], "lowestEfficiency") || !strings.Contains(lines[1], "highestUserWastedPercent") {
			t.Errorf("--ci: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e.run("", "layers", "layers-a", "--ci", "--lowest-efficiency", "0.5", "--highest-user-wasted-percent", "disabled", "--highest-wasted-bytes", "1MB")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.HasPrefix(r.stdout, "PASS") {
			t.Errorf("--ci with lower thresholds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		conf := filepath.Join(t.TempDir(), ".dive-ci")
		os.WriteFile(conf, []byte("rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: 100kB\n  highestUserWastedPercent: disabled\n"), 0o644)
		r = e.run("", "layers", "layers-a", "--ci", "--ci-config", conf)
		if r.code != 1 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "too many bytes wasted (wasted-bytes=400007 > threshold=100000)") {
			t.Errorf("--ci-config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Flags override the file.
		if r = e.run("", "layers", "layers-a", "--ci", "--ci-config", conf, "--highest-wasted-bytes", "disabled"); r.code != 0 {
			t.Errorf("--ci-config with a flag over it: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The same gate after a (cached) build.
		r = e.run("", "build", "-q", "-t", "layers-a", "--check-layers", ctxA)
		if r.code != 1 || !strings.Contains(r.stderr, "FAIL") || !strings.Contains(r.stderr, "lowestEfficiency") {
			t.Errorf("build --check-layers: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r = e.run("", "build", "-q", "--check-layers", "--lowest-efficiency", "0.5", "--highest-user-wasted-percent", "disabled", ctxA); r.code != 0 || !strings.Contains(r.stderr, "PASS") {
			t.Errorf("build --check-layers, lower thresholds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r = e.run("", "build", "-q", "--lowest-efficiency", "0.5", ctxA); r.code != 1 || !strings.Contains(r.stderr, "need --check-layers") {
			t.Errorf("a threshold without --check-layers: exit %d\n%s", r.code, r.stderr)
		}
		var res struct {
			Passed bool
			Rules  []imageview.RuleResult
		}
		if err := json.Unmarshal([]byte(e.run("", "layers", "layers-a", "--ci", "--format", "json").stdout), &res); err != nil || res.Passed || len(res.Rules) != 3 || res.Rules[1].Status != "skip" {
			t.Errorf("--ci --format json: %+v %v", res, err)
		}
	})

	t.Run("html", func(t *testing.T) {
		kilntest.NeedTool(t, "chromium")
		report := filepath.Join(t.TempDir(), "report.html")
		e.kiln("layers", "layers-a", "--html", report)
		page, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(src|href)="?(https?:)?//`).Match(page) {
			t.Errorf("the report fetches from the network")
		}
		cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+report)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		dom, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		d := string(dom)
		if !strings.Contains(d, `<body data-rendered="yes">`) || !strings.Contains(d, `<pre id="errors" hidden=""></pre>`) {
			t.Errorf("the page did not render, or raised a JavaScript error:\n%s", d)
		}
		for _, l := range a.Layers {
			if want := `<td class="num size">` + humanSize(l.Size) + `</td>`; !strings.Contains(d, want) {
				t.Errorf("layer %d: %s not in the rendered table", l.Index, want)
			}
		}
		if !regexp.MustCompile(`<tr class="wasted-file"><td class="num">400kB</td><td>1</td><td class="path">/big</td></tr>`).MatchString(d) {
			t.Errorf("the top wasted file is not shown")
		}
		if !strings.Contains(d, `data-path="/bin/busybox"`) || !strings.Contains(d, "Total size: </b>"+humanSize(a.Size)) {
			t.Errorf("the chart or the summary is missing")
		}
	})

	t.Run("tui", func(t *testing.T) {
		kilntest.NeedTool(t, "tmux")
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(t.TempDir(), "tmux.sock")
		tmux := func(args ...string) (string, error) {
			out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
			return string(out), err
		}
		t.Cleanup(func() { tmux("kill-server") })
		if out, err := tmux("new-session", "-d", "-s", "kiln", "-x", "160", "-y", "40",
			"env", "KILN_TEST_MAIN=1", self, "--root", e.root, "layers", "layers-a", "-i"); err != nil {
			t.Fatalf("tmux: %v %s", err, out)
		}
		screen := func() string { s, _ := tmux("capture-pane", "-p", "-t", "kiln"); return s }
		// waitFor polls the screen until ok says the UI got there (the
		// deadline only stops a hung test).
		waitFor := func(what string, ok func(string) bool) {
			t.Helper()
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if ok(screen()) {
					return
				}
			}
			t.Fatalf("%s; the screen:\n%s", what, screen())
		}
		has := func(subs ...string) func(string) bool {
			return func(s string) bool {
				for _, sub := range subs {
					if !strings.Contains(s, sub) {
						return false
					}
				}
				return true
			}
		}
		waitFor("no layer list", has("Layers", "Layer 0:", "busybox", "wasted    400kB  /big"))
		tmux("send-keys", "-t", "kiln", "Down", "Down", "Down")
		waitFor("layer 3 not shown", has("Layer 3: 0 added, 2 changed, 1 removed", "D    400kB  big", "C       3B  small"))
		tmux("send-keys", "-t", "kiln", "d")
		const big, small, f = "D    400kB  big", "C       3B  small", "C       4B  f"
		waitFor("d did not hide the removed", func(s string) bool { return !strings.Contains(s, big) && strings.Contains(s, small) })
		tmux("send-keys", "-t", "kiln", "d", "x")
		waitFor("x did not hide the chmod", func(s string) bool {
			return strings.Contains(s, big) && !strings.Contains(s, small) && strings.Contains(s, f)
		})
		tmux("send-keys", "-t", "kiln", "x", "Tab", "Down", "Down", "Enter") // collapse d/
		waitFor("d/ did not collapse", func(s string) bool {
			return strings.Contains(s, small) && strings.Contains(s, "d/") && !strings.Contains(s, f)
		})
		tmux("send-keys", "-t", "kiln", "q")
		waitFor("q did not quit", func(string) bool { _, err := tmux("has-session", "-t", "kiln"); return err != nil })
	})
}
