package rootless

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/proc"
)

func TestOwnDir(t *testing.T) {
	dir := t.TempDir()
	uid := os.Getuid()
	own := filepath.Join(dir, "own")
	os.Mkdir(own, 0o700)
	if err := ownDir(own, uid); err != nil {
		t.Errorf("own 0700 directory: %v", err)
	}
	if err := ownDir(own, uid+1); err == nil || !strings.Contains(err.Error(), "is owned by uid") {
		t.Errorf("another's directory: %v", err)
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	if err := ownDir(open, uid); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("world-writable directory: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(own, link)
	if err := ownDir(link, uid); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("symlink: %v", err)
	}
}

func TestUserDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if d, err := userDataDir(account{home: "/home/u"}); err != nil || d != "/x/data/kiln" {
		t.Errorf("with XDG_DATA_HOME: %s, %v", d, err)
	}
	t.Setenv("XDG_DATA_HOME", "relative")
	if d, err := userDataDir(account{home: "/home/u"}); err != nil || d != "/home/u/.local/share/kiln" {
		t.Errorf("without XDG_DATA_HOME: %s, %v", d, err)
	}
	if _, err := userDataDir(account{}); err == nil {
		t.Error("no HOME: no error")
	}
}

func TestPathsUnderRoot(t *testing.T) {
	t.Setenv(EnvUID, "")
	t.Setenv(EnvRuntimeDir, "/elsewhere")
	if Active() || RuntimePath("x") != "/run/kiln/x" || DefaultRoot() != "/var/lib/kiln" || Environ() != nil || PausePID() != 0 {
		t.Errorf("real root: Active %v, RuntimePath %s, DefaultRoot %s, Environ %v", Active(), RuntimePath("x"), DefaultRoot(), Environ())
	}
	t.Setenv(EnvUID, "1000")
	t.Setenv(EnvDataDir, "/home/u/.local/share/kiln")
	if !Active() || HostUID() != 1000 || RuntimePath("x") != "/elsewhere/x" || DefaultRoot() != "/home/u/.local/share/kiln" || len(Environ()) != 3 {
		t.Errorf("rootless: Active %v, HostUID %d, RuntimePath %s, DefaultRoot %s, Environ %v", Active(), HostUID(), RuntimePath("x"), DefaultRoot(), Environ())
	}
}

func TestPauseAlive(t *testing.T) {
	st, ok := proc.StartTime(os.Getpid())
	if !ok || st == 0 {
		t.Fatalf("StartTime(self) = %d, %v", st, ok)
	}
	p := pauseProc{pid: os.Getpid(), start: st}
	if !p.alive() {
		t.Error("this process is not alive")
	}
	p.start++
	if p.alive() {
		t.Error("a reused pid is alive")
	}
}

// TestRuntimeDirAgrees: the constructor of join_linux.c finds the runtime
// directory Go's userRuntimeDir finds, by the same checks; where it finds
// none (a directory to make, a path Go would clean) the Go path enters.
func TestRuntimeDirAgrees(t *testing.T) {
	if !canJoin {
		t.Skip("built without cgo")
	}
	uid := os.Getuid()
	dir := t.TempDir()
	mk := func(name string, mode os.FileMode, owner int) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, owner, -1)
		return p
	}
	fallback := fmt.Sprintf("/tmp/kiln-run-%d", uid)
	if _, err := os.Lstat(fallback); os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll(fallback) })
	}
	mk("ok/kiln", 0o700, uid)
	mk("open", 0o777, uid)
	mk("other", 0o700, uid+4242)
	mk("openkiln/kiln", 0o777, uid)
	mk("linkkiln", 0o700, uid)
	os.Symlink(filepath.Join(dir, "ok/kiln"), filepath.Join(dir, "linkkiln/kiln"))
	os.Symlink(filepath.Join(dir, "ok"), filepath.Join(dir, "link"))
	mk("new", 0o700, uid)
	for _, c := range []struct {
		xdg  string
		fast bool // the constructor finds it (else Go decides)
	}{
		{dir + "/ok", true},
		{dir + "/ok/", false},
		{dir + "/./ok", false},
		{dir + "/ok/../ok", false},
		{dir + "//ok", false},
		{dir + "/link", false},
		{dir + "/open", false},
		{dir + "/other", false},
		{dir + "/openkiln", false},
		{dir + "/linkkiln", false},
		{dir + "/missing", false},
		{dir + "/new", false}, // Go makes new/kiln
		{dir + "/new", true},  // then the constructor finds it
		{"", false},           // Go makes /tmp/kiln-run-UID/kiln, if missing
		{"", true},
		{"relative", true},
	} {
		t.Setenv("XDG_RUNTIME_DIR", c.xdg)
		crt, cok := cRuntimeDir(uid)
		grt, gerr := userRuntimeDir(uid)
		switch {
		case cok && (gerr != nil || grt != crt):
			t.Errorf("XDG_RUNTIME_DIR=%q: the constructor enters with %s, Go's path has %q, %v", c.xdg, crt, grt, gerr)
		case c.fast && !cok:
			t.Errorf("XDG_RUNTIME_DIR=%q: the constructor finds no runtime directory (Go's %q, %v)", c.xdg, grt, gerr)
		case !c.fast && cok && c.xdg != "":
			t.Errorf("XDG_RUNTIME_DIR=%q: the constructor enters with %s", c.xdg, crt)
		}
	}
}
