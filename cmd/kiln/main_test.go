package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

// The test binary doubles as kiln: with KILN_TEST_MAIN set it runs main(), so
// the end-to-end tests exercise the real command, its re-executions (mount
// namespace, sandbox init) included, without a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("KILN_TEST_MAIN") == "1" || runner.IsInit() || container.IsMonitor() || network.IsReaper() || rootless.IsPause() || cache.IsDeleter() {
		countStart()
		main()
		os.Exit(0)
	}
	os.Setenv(cache.DeleterTestEnv, "1") // main() dispatches the deleter
	code := m.Run()
	if baseTarCache != "" {
		os.RemoveAll(filepath.Dir(baseTarCache))
	}
	os.Exit(code)
}

// env is an isolated kiln environment: its own store.
type env struct {
	t    *testing.T
	root string
}

func newEnv(t *testing.T) *env {
	kilntest.RequireRoot(t)
	e := &env{t: t, root: t.TempDir()}
	// Before the store goes (cleanups run last first): the deleter of
	// its trash is done.
	t.Cleanup(func() {
		if err := cache.WaitTrash(e.root); err != nil {
			t.Error(err)
		}
		// The store goes under its networks' lock: a network reaper
		// still waiting out the teardown delay must not write a record
		// into it while it is deleted.
		release, err := network.HoldForRemoval(e.root)
		if err != nil {
			t.Error(err)
			return
		}
		defer release()
		if err := os.RemoveAll(e.root); err != nil {
			t.Error(err)
		}
	})
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs kiln with args and stdin.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(self, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// kiln runs kiln and fails the test if it exits non-zero.
func (e *env) kiln(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("kiln %s: exit %d\nstderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// importBase imports the busybox base image of testdata/mkbase.sh as name,
// and returns the tar it imported (for docker to import the same bytes).
func (e *env) importBase(name string) string {
	e.t.Helper()
	return importBaseInto(e.t, func(tarPath string) { e.kiln("import", tarPath, name) })
}

var baseTarCache string

func importBaseInto(t *testing.T, imp func(tarPath string)) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static; make deps installs it)")
	}
	if baseTarCache == "" {
		dir, err := os.MkdirTemp("", "kiln-base-")
		if err != nil {
			t.Fatal(err)
		}
		mk, _ := filepath.Abs("../../testdata/mkbase.sh")
		if out, err := exec.Command("sh", mk, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
			t.Fatalf("mkbase: %v\n%s", err, out)
		}
		tarPath := filepath.Join(dir, "base.tar")
		// A fixed mtime keeps the base tar, and so the base image, the same in every run.
		if out, err := exec.Command("tar", "--sort=name", "--mtime=@0", "--numeric-owner", "-C", filepath.Join(dir, "rootfs"), "-cf", tarPath, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		os.RemoveAll(filepath.Join(dir, "rootfs"))
		baseTarCache = tarPath
	}
	imp(baseTarCache)
	return baseTarCache
}
