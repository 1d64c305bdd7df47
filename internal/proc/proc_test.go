package proc

import (
	"os"
	"testing"
)

func TestStartTime(t *testing.T) {
	// 22 fields; the name may hold spaces and parentheses.
	line := "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50"
	if n, ok := parseStartTime([]byte(line)); !ok || n != 123456 {
		t.Errorf("parseStartTime = %d, %v", n, ok)
	}
	for _, bad := range []string{
		"42 (zombie) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 50",
		"42 (short) S 1 2 3",
		"no parenthesis",
	} {
		if _, ok := parseStartTime([]byte(bad)); ok {
			t.Errorf("parseStartTime(%q) succeeded", bad)
		}
	}
	if _, ok := StartTime(os.Getpid()); !ok {
		t.Errorf("StartTime of this process failed")
	}
	if _, ok := StartTime(-1); ok {
		t.Errorf("StartTime(-1) succeeded")
	}
}
