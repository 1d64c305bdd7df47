package main

import (
	"strings"
	"testing"
)

// build --ulimit and --shm-size reach RUN steps and are part of their
// cache keys, as BuildKit's.
func TestBuildUlimitShmSize(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM localhost/bb:latest\n" +
		"RUN echo $(ulimit -n) $(ulimit -Hn) $(df -k /dev/shm | tail -1 | awk '{print $2}') > /limits\n"})
	limited := strings.TrimSpace(e.kiln("build", "-q", "--ulimit", "nofile=77:88", "--shm-size", "3m", "-t", "limited", ctx))
	if got := catFile(t, e, "limited", "/limits"); got != "77 88 3072\n" {
		t.Errorf("/limits = %q", got)
	}
	plain := strings.TrimSpace(e.kiln("build", "-q", "-t", "plain", ctx))
	if plain == limited || catFile(t, e, "plain", "/limits") == "77 88 3072\n" {
		t.Errorf("without the limits the step hit the limited one's cache")
	}
	if again := strings.TrimSpace(e.kiln("build", "-q", "--ulimit", "nofile=77:88", "--shm-size", "3m", ctx)); again != limited {
		t.Errorf("the same limits missed the cache: %s, then %s", limited, again)
	}
	if r := e.run("", "build", "--ulimit", "nofile=9:8", ctx); r.code == 0 || !strings.Contains(r.stderr, "soft limit must be less than or equal to hard limit") {
		t.Errorf("bad --ulimit: %+v", r)
	}
}
