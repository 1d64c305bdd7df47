package rootless

import (
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
