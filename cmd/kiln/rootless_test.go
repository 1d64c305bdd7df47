package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// rlEnv runs kiln (this test binary) as an ordinary user.
type rlEnv struct {
	t *testing.T
	u *kilntest.User
}

func newRootlessEnv(t *testing.T, subIDs bool) *rlEnv {
	t.Helper()
	var u *kilntest.User
	if subIDs {
		u = kilntest.RootlessUser(t, "")
	} else {
		u = kilntest.RootlessUserWithoutSubIDs(t, "")
	}
	u.Env = append(u.Env, "KILN_TEST_MAIN=1")
	return &rlEnv{t: t, u: u}
}

func (e *rlEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	cmd := e.u.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run kiln %v as %s: %v", args, e.u.Name, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (e *rlEnv) kiln(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("kiln %s (as %s): exit %d\nstderr:\n%s", strings.Join(args, " "), e.u.Name, r.code, r.stderr)
	}
	return r.stdout
}

// context writes a build context the user can read.
func (e *rlEnv) context(files map[string]string) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.u.Home, "ctx-")
	if err != nil {
		e.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	return dir
}

func TestRootlessSmoke(t *testing.T) {
	e := newRootlessEnv(t, true)
	importBaseInto(t, func(tarPath string) {
		data, err := os.ReadFile(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.run(string(data), "import", "-", "localhost/bb:latest"); r.code != 0 {
			t.Fatalf("import: %s", r.stderr)
		}
	})
	t.Log(e.kiln("images"))
	ctx := e.context(map[string]string{"Dockerfile": "FROM localhost/bb\nRUN adduser -D -u 1000 app && echo hi > /home/app/x && chown 1000:1000 /home/app/x && ls -ln /home/app\n"})
	t.Log(e.kiln("build", "--network", "none", "-t", "t1", ctx))
}
