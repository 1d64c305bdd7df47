package main

import (
	"strings"
	"testing"
)

// firstChild prints the PID of the first process the command starts. The
// C sandbox init (runner's cinit_linux.c) execs the command without
// starting a thread, so in the sandbox's PID namespace that child is 2;
// under the Go init its runtime's threads took the PIDs after 1 first.
const firstChild = `sleep 0 & echo $!`

// TestSandboxInitIsC: RUN steps in every network mode, with mounts and
// with --security=insecure, and containers run by the C init.
func TestSandboxInitIsC(t *testing.T) {
	e := newEnv(t)
	e.importBase("localhost/bb:latest")
	ctx := writeContext(t, map[string]string{"f": "x", "Dockerfile": `FROM localhost/bb:latest
RUN ` + firstChild + ` > /default
RUN --network=none ` + firstChild + ` > /none
RUN --network=host ` + firstChild + ` > /host
RUN --security=insecure ` + firstChild + ` > /insecure
RUN --mount=type=bind,source=f,target=/f --mount=type=cache,target=/c --mount=type=tmpfs,target=/t ` + firstChild + ` > /mounts
`})
	e.kiln("build", "-q", "--allow", "network.host", "--allow", "security.insecure", "-t", "pids", ctx)
	for _, f := range []string{"/default", "/none", "/host", "/insecure", "/mounts"} {
		if got := strings.TrimSpace(catFile(t, e, "pids", f)); got != "2" {
			t.Errorf("RUN %s: first child %q, want 2", f, got)
		}
	}
	for _, args := range [][]string{
		{"run", "--rm", "localhost/bb:latest", "sh", "-c", firstChild},
		{"run", "--rm", "--network", "none", "--read-only", "--ulimit", "nofile=100:200", "localhost/bb:latest", "sh", "-c", firstChild},
	} {
		if got := strings.TrimSpace(e.kiln(args...)); got != "2" {
			t.Errorf("%q: first child %q, want 2", args, got)
		}
	}
}
