package runner

import (
	"os"
	"testing"
)

func TestParseProcStart(t *testing.T) {
	// 22 fields; the name may hold spaces and parentheses.
	line := "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50"
	if n, ok := parseProcStart([]byte(line)); !ok || n != 123456 {
		t.Errorf("parseProcStart = %d, %v", n, ok)
	}
	for _, bad := range []string{
		"42 (zombie) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50",
		"42 (short) S 1 2 3",
		"no parenthesis",
	} {
		if _, ok := parseProcStart([]byte(bad)); ok {
			t.Errorf("parseProcStart(%q) succeeded", bad)
		}
	}
	if _, ok := ProcStart(os.Getpid()); !ok {
		t.Errorf("ProcStart of this process failed")
	}
	if _, ok := ProcStart(-1); ok {
		t.Errorf("ProcStart(-1) succeeded")
	}
}
