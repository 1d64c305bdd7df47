package builder

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestLint: each Dockerfile breaks one of BuildKit's build checks; the
// check reports it (rule, line, BuildKit's message) and nothing else, and
// the # check= directive skips rules or makes them errors.
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		rule, dockerfile string
		line             int
		msg              string
	}{
		{"FromAsCasing", "FROM scratch as base\nCOPY a /a\n", 1, "'as' and 'FROM' keywords' casing do not match"},
		{"JSONArgsRecommended", "FROM scratch\nCMD run --fast\n", 2, "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"},
		{"MultipleInstructionsDisallowed", "FROM scratch\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\n", 2, "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used"},
		{"StageNameCasing", "FROM scratch AS Build\nCOPY a /a\n", 1, "Stage name 'Build' should be lowercase"},
		{"UndefinedVar", "FROM scratch\nARG VERSION=1\nCOPY a-$VERSON /a\n", 3, "Usage of undefined variable '$VERSON' (did you mean $VERSION?)"},
		{"SecretsUsedInArgOrEnv", "FROM scratch\nENV API_TOKEN=x\n", 2, `Do not use ARG or ENV instructions for sensitive data (ENV "API_TOKEN")`},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			ws, err := lintDockerfile([]byte(tc.dockerfile), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != 1 || ws[0].Rule != tc.rule || ws[0].Line != tc.line || ws[0].Message != tc.msg || !strings.HasPrefix(ws[0].URL, "https://docs.docker.com/go/dockerfile/rule/") {
				t.Fatalf("warnings %+v, want one %s at line %d: %q", ws, tc.rule, tc.line, tc.msg)
			}
			// Skipped by the directive, the rule is silent.
			if ws, err := lintDockerfile([]byte("# check=skip="+tc.rule+"\n"+tc.dockerfile), nil, nil); err != nil || len(ws) != 0 {
				t.Errorf("with check=skip=%s: %+v, %v", tc.rule, ws, err)
			}
			// error=true makes it fail the build.
			ws, err = lintDockerfile([]byte("# check=error=true\n"+tc.dockerfile), nil, nil)
			if !errors.Is(err, ErrLint) || !strings.Contains(err.Error(), tc.rule) || len(ws) != 1 {
				t.Errorf("with check=error=true: %+v, %v", ws, err)
			}
		})
	}
	t.Run("clean", func(t *testing.T) {
		df := "FROM scratch AS base\nARG V=1\nENV PATH=/bin:$PATH\nCOPY a-$V /a\nWORKDIR /app\nCMD [\"a\"]\nFROM base\nCOPY --from=base /a /b\nENTRYPOINT [\"b\"]\n"
		if ws, err := lintDockerfile([]byte(df), nil, nil); err != nil || len(ws) != 0 {
			t.Errorf("clean Dockerfile: %+v, %v", ws, err)
		}
	})
	t.Run("skip several, and a stage inherits its parent's variables", func(t *testing.T) {
		df := "# check=skip=FromAsCasing,JSONArgsRecommended\nFROM scratch as one\nENV HOME=/root\nCMD x\nFROM one\nWORKDIR $HOME\nCOPY $NOPE /x\n"
		ws, err := lintDockerfile([]byte(df), nil, nil)
		var rules []string
		for _, w := range ws {
			rules = append(rules, w.Short())
		}
		if err != nil || !slices.Equal(rules, []string{"UndefinedVar: Usage of undefined variable '$NOPE' (did you mean $HOME?) (line 7)"}) {
			t.Errorf("got %q, %v", rules, err)
		}
	})
}

// TestLintExpansionBomb: the checks expand words as the build does, within
// the same bound, so a Dockerfile whose variables grow tenfold a line is
// linted at once.
func TestLintExpansionBomb(t *testing.T) {
	df := "FROM scratch\nARG X=abcdefghij\n" + strings.Repeat("ARG X=$X$X$X$X$X$X$X$X$X$X\n", 13) + "LABEL x=$X\n"
	if ws, err := lintDockerfile([]byte(df), nil, nil); err != nil || len(ws) != 0 {
		t.Errorf("%+v, %v", ws, err)
	}
}
