package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func openCacheMount(t *testing.T, s *Store, key string, sharing CacheSharing, init func(string) error) *CacheMount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cm, err := s.OpenCacheMount(ctx, key, sharing, init, nil)
	if err != nil {
		t.Fatalf("open cache mount %s (%s): %v", key, sharing, err)
	}
	t.Cleanup(func() { cm.Release() })
	return cm
}

func TestCacheMountPersistsAndInitsOnce(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var inits atomic.Int32
	init := func(dir string) error {
		inits.Add(1)
		return os.Chmod(dir, 0o700)
	}
	cm := openCacheMount(t, s, "/go/cache", SharingShared, init)
	if err := os.WriteFile(filepath.Join(cm.Dir, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	cm.Release()

	// Another process (another Store on the same root) sees the contents.
	other, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	again := openCacheMount(t, other, "/go/cache", SharingShared, init)
	if again.Dir != cm.Dir {
		t.Errorf("dir %s, want %s", again.Dir, cm.Dir)
	}
	if data, err := os.ReadFile(filepath.Join(again.Dir, "f")); err != nil || string(data) != "kept" {
		t.Errorf("contents: %q, %v", data, err)
	}
	if fi, err := os.Stat(again.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mode from init: %v, %v", fi.Mode(), err)
	}
	if n := inits.Load(); n != 1 {
		t.Errorf("init ran %d times, want 1", n)
	}
	if d := openCacheMount(t, s, "/other", SharingShared, nil); d.Dir == cm.Dir {
		t.Error("another id shares the directory")
	}
	if !errors.Is(func() error { _, err := s.OpenCacheMount(context.Background(), "x", "bogus", nil, nil); return err }(), ErrInvalid) {
		t.Error("unknown sharing accepted")
	}
}

func TestCacheMountSharing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// shared: every user at once, the same directory.
	a := openCacheMount(t, s, "k", SharingShared, nil)
	b := openCacheMount(t, s, "k", SharingShared, nil)
	if a.Dir != b.Dir {
		t.Errorf("shared users got %s and %s", a.Dir, b.Dir)
	}
	// private: a busy directory sends the user to another one.
	p := openCacheMount(t, s, "k", SharingPrivate, nil)
	if p.Dir == a.Dir {
		t.Errorf("private user got the busy directory %s", p.Dir)
	}
	p2 := openCacheMount(t, s, "k", SharingPrivate, nil)
	if p2.Dir == p.Dir || p2.Dir == a.Dir {
		t.Errorf("second private user got %s (others: %s, %s)", p2.Dir, a.Dir, p.Dir)
	}
	p.Release()
	if p3 := openCacheMount(t, s, "k", SharingPrivate, nil); p3.Dir != p.Dir {
		t.Errorf("a released private directory is not reused: %s, want %s", p3.Dir, p.Dir)
	}

	// locked: waits while others use it, and says so once.
	waited := make(chan struct{}, 1)
	got := make(chan *CacheMount, 1)
	go func() {
		cm, err := s.OpenCacheMount(context.Background(), "k", SharingLocked, nil, func() { waited <- struct{}{} })
		if err != nil {
			t.Error(err)
		}
		got <- cm
	}()
	select {
	case <-waited:
	case <-time.After(time.Minute):
		t.Fatal("locked user did not wait for the shared users")
	}
	// It said it waits: it must not hold the directory now.
	select {
	case <-got:
		t.Fatal("locked user got the directory while shared users hold it")
	default:
	}
	a.Release()
	b.Release()
	var locked *CacheMount
	select {
	case locked = <-got:
	case <-time.After(time.Minute):
		t.Fatal("locked user still waiting after the others released")
	}
	defer locked.Release()
	if locked.Dir != a.Dir {
		t.Errorf("locked user got %s, want %s", locked.Dir, a.Dir)
	}

	// A waiting user gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.OpenCacheMount(ctx, "k", SharingShared, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shared user beside a locked one: %v, want a deadline error", err)
	}
}

func TestRemoveCacheMountsSkipsBusy(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	busy := openCacheMount(t, s, "busy", SharingShared, nil)
	idle := openCacheMount(t, s, "idle", SharingShared, nil)
	for _, d := range []string{busy.Dir, idle.Dir} {
		if err := os.WriteFile(filepath.Join(d, "data"), make([]byte, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idle.Release()
	freed, err := s.RemoveCacheMounts()
	if err != nil {
		t.Fatal(err)
	}
	if freed < 64<<10 {
		t.Errorf("freed %d bytes, want at least %d", freed, 64<<10)
	}
	if _, err := os.Stat(idle.Dir); !os.IsNotExist(err) {
		t.Errorf("idle cache mount still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(busy.Dir, "data")); err != nil {
		t.Errorf("busy cache mount removed: %v", err)
	}
	// The removed one starts empty when used again.
	again := openCacheMount(t, s, "idle", SharingShared, nil)
	if ents, _ := os.ReadDir(again.Dir); len(ents) != 0 {
		t.Errorf("recreated cache mount holds %d entries", len(ents))
	}
}
