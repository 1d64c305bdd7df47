package builder

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Each `ARG X=$X$X$X$X$X$X$X$X$X$X` makes X ten times longer: expansion
// must stop at maxExpansion with an error, never build the whole word.
func TestExpansionBounded(t *testing.T) {
	st := &stage{lex: shell.NewLex('\\')}
	v := "abcdefghij"
	st.args = []arg{{key: "X", value: &v}}
	word := strings.Repeat("$X", 10)
	for i := 0; ; i++ {
		out, err := st.expand(word)
		if err != nil {
			if !strings.Contains(err.Error(), "variable expansion exceeds") {
				t.Fatalf("step %d: %v", i, err)
			}
			if len(v)*10 <= maxExpansion {
				t.Fatalf("refused %d bytes, under the bound", len(v)*10)
			}
			break
		}
		if len(out) > maxExpansion+len(word) {
			t.Fatalf("step %d: expanded to %d bytes", i, len(out))
		}
		v = out
		st.args = append(st.args, arg{key: "X", value: &v})
		if i > 12 {
			t.Fatalf("13 lines of ARG X=$X... gave %d bytes without an error", len(v))
		}
	}
	// Many references in one word count together, and heredocs too.
	big := strings.Repeat("y", maxExpansion/4+1)
	st.args = []arg{{key: "Y", value: &big}}
	if _, err := st.expand("$Y$Y$Y$Y"); err == nil {
		t.Fatal("4 references of a quarter of the bound each: no error")
	}
	if _, err := st.expandRaw("$Y\n$Y\n$Y\n$Y\n"); err == nil {
		t.Fatal("heredoc: no error")
	}
	// Up to the bound is fine.
	if out, err := st.expand("$Y$Y$Y"); err != nil || len(out) != 3*len(big) {
		t.Fatalf("3 quarters of the bound: %d bytes, %v", len(out), err)
	}
}
