package builder

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Each RUN step's sandbox init is started while the step before commits
// (runner.Prestart): a step on another network than the init was started
// for gets an init of its own, a failed step's build stops the one started
// for the step after it, and no init outlives the build.
func TestRunStepsPrestartedInits(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	var host syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	hostNet := strconv.FormatUint(host.Ino, 10)
	r := e.mustBuild(`FROM localhost/bb:latest
RUN echo a > /a
RUN cat /a > /b; echo none-$(stat -L -c %i /proc/self/ns/net)
RUN --network=host cat /b > /c; echo host-$(stat -L -c %i /proc/self/ns/net)
RUN cat /c > /d; echo last-$(stat -L -c %i /proc/self/ns/net)
`, Options{Allow: []string{EntitlementNetworkHost}})
	// the commands' output, not their text in the step names
	nets := map[string]string{}
	for _, m := range regexp.MustCompile(`(none|host|last)-([0-9]+)`).FindAllStringSubmatch(r.progress, -1) {
		nets[m[1]] = m[2]
	}
	if len(nets) != 3 || nets["host"] != hostNet || nets["none"] == hostNet || nets["last"] == hostNet {
		t.Fatalf("network namespaces %v, host's %s:\n%s", nets, hostNet, r.progress)
	}
	if d := e.catFile(r.id, "/d"); d != "a\n" {
		t.Fatalf("/d = %q", d)
	}
	assertNoChildren(t)

	r = e.build("FROM localhost/bb:latest\nRUN echo one\nRUN exit 3\nRUN echo never\n", Options{NoCache: true})
	if r.err == nil || !strings.Contains(r.err.Error(), "exit code: 3") || strings.Contains(r.progress, "never") {
		t.Fatalf("build = %v\n%s", r.err, r.progress)
	}
	assertNoChildren(t)
}

// assertNoChildren fails if this process has a child process left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	me := "PPid:\t" + strconv.Itoa(os.Getpid()) + "\n"
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
		if strings.Contains(string(status), me) {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			t.Fatalf("process %s (%q) left after the build", e.Name(), cmdline)
		}
	}
}
