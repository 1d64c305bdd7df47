package builder

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// parseOne parses a single Dockerfile instruction.
func parseOne(t *testing.T, line string) instructions.Command {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// The history texts below are what BuildKit v0.34.2 wrote for the same
// instructions (testdata/exact/history, testdata/build/metadata).
func TestHistoryTextAsBuildKit(t *testing.T) {
	flags := []struct{ line, want string }{
		{"COPY --chown=1000:1000 f1 /owned/f1", " --chown=1000:1000"},
		{"COPY --chmod=600 f1 /moded", " --chmod=600"},
		{"COPY --chown=app --chmod=640 f1 f2 /both/", " --chown=app --chmod=640"},
		{"COPY --parents sub/s.txt /par/", " --parents"},
		{"COPY --link --exclude=*.md --from=other f2 /linked", ""},
		{"ADD --chmod=0600 a.tar.gz /x/chmod/", " --chmod=0600"},
	}
	for _, c := range flags {
		var req copyRequest
		switch cmd := parseOne(t, c.line).(type) {
		case *instructions.CopyCommand:
			req = copyRequest{chown: cmd.Chown, chmod: cmd.Chmod, parents: cmd.Parents}
		case *instructions.AddCommand:
			req = copyRequest{chown: cmd.Chown, chmod: cmd.Chmod}
		}
		if got := req.historyFlags(); got != c.want {
			t.Errorf("%s: flags %q, want %q", c.line, got, c.want)
		}
	}
	health := []struct{ line, want string }{
		{"HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --start-interval=2s --retries=4 CMD wget -q -O- http://localhost/ || exit 1",
			"HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] Interval:30s Timeout:5s StartPeriod:10s StartInterval:2s Retries:4}"},
		{"HEALTHCHECK --interval=5s --timeout=3s CMD true",
			"HEALTHCHECK {Test:[CMD-SHELL true] Interval:5s Timeout:3s StartPeriod:0s StartInterval:0s Retries:0}"},
	}
	for _, c := range health {
		if got := healthcheckHistory(parseOne(t, c.line).(*instructions.HealthCheckCommand)); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.line, got, c.want)
		}
	}
}
