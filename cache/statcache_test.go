package cache

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// statCacheFixture is a saved stat cache of three files of a context, with
// the save moved back in time so that its entries are no longer racy.
func statCacheFixture(t *testing.T) (*Store, string, []string) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.TempDir()
	c := s.StatCache(ctx)
	var paths []string
	for _, name := range []string{"b", "a", "c/d"} {
		p := filepath.Join(ctx, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		c.Add(p, &st, digest.FromString(name))
		paths = append(paths, p)
	}
	// The files were written just now: age them so the save trusts them.
	old := int64(3 * racyWindow)
	for _, p := range paths {
		var st unix.Stat_t
		unix.Lstat(p, &st)
		mt := unix.NsecToTimespec(st.Mtim.Nano() - old)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		unix.Lstat(p, &st)
		c.Add(p, &st, digest.FromString(filepath.Base(p)))
	}
	c.savedAt = 0
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	return s, ctx, paths
}

func lookup(t *testing.T, c *StatCache, p string) (digest.Digest, bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return c.Lookup(p, &st)
}

func TestStatCacheRoundTrip(t *testing.T) {
	s, ctx, paths := statCacheFixture(t)
	c := s.StatCache(ctx)
	if c.base.count != len(paths) {
		t.Fatalf("loaded %d entries, want %d", c.base.count, len(paths))
	}
	// ctime is now: within the racy window of the save, nothing is trusted
	// until a later save vouches for it.
	c.savedAt += 10 * racyWindow
	for _, p := range paths {
		if d, ok := lookup(t, c, p); !ok || d != digest.FromString(filepath.Base(p)) {
			t.Errorf("%s: got %q %v", p, d, ok)
		}
	}
	if _, ok := lookup(t, c, filepath.Join(ctx, "c")); ok {
		t.Errorf("a path never added was found")
	}
}

// TestStatCacheChangeMisses: every change a stat shows makes the entry miss.
func TestStatCacheChangeMisses(t *testing.T) {
	s, ctx, paths := statCacheFixture(t)
	c := s.StatCache(ctx)
	c.savedAt += 10 * racyWindow
	var st unix.Stat_t
	unix.Lstat(paths[0], &st)
	for name, change := range map[string]func(*unix.Stat_t){
		"size":  func(st *unix.Stat_t) { st.Size++ },
		"mtime": func(st *unix.Stat_t) { st.Mtim.Nsec++ },
		"ctime": func(st *unix.Stat_t) { st.Ctim.Nsec++ },
		"inode": func(st *unix.Stat_t) { st.Ino++ },
		"dev":   func(st *unix.Stat_t) { st.Dev++ },
	} {
		changed := st
		change(&changed)
		if _, ok := c.Lookup(paths[0], &changed); ok {
			t.Errorf("a changed %s still hits", name)
		}
	}
	if _, ok := c.Lookup(paths[0], &st); !ok {
		t.Errorf("the unchanged stat misses")
	}
}

// TestStatCacheRacy: an entry whose file changed close to the save is not
// trusted.
func TestStatCacheRacy(t *testing.T) {
	s, ctx, paths := statCacheFixture(t)
	c := s.StatCache(ctx)
	if _, ok := lookup(t, c, paths[0]); ok {
		t.Errorf("an entry changed (ctime) within the racy window of its save hits")
	}
}

// TestStatCacheCorrupt: a damaged, truncated or foreign file is an empty
// cache, never a wrong hit, and the next save replaces it.
func TestStatCacheCorrupt(t *testing.T) {
	s, ctx, paths := statCacheFixture(t)
	file := s.StatCache(ctx).path
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-5],
		"digest":    flip(statHeaderLen + 40),
		"path":      flip(len(good) - 6),
		"version":   flip(7),
		"count":     flip(16),
		"gob":       []byte("\x0f\xff\x81\x03\x01\x01"),
	} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := s.StatCache(ctx)
		c.savedAt += 10 * racyWindow
		for _, p := range paths {
			if _, ok := lookup(t, c, p); ok {
				t.Errorf("%s: %s hits in a corrupt cache", name, p)
			}
		}
	}
	c := s.StatCache(ctx)
	var st unix.Stat_t
	unix.Lstat(paths[0], &st)
	c.Add(paths[0], &st, digest.FromString("b"))
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if c := s.StatCache(ctx); c.base.count != 1 {
		t.Errorf("after a save over a corrupt file: %d entries, want 1", c.base.count)
	}
}

// TestStatCacheUpdate: an entry added over a loaded one replaces it, and a
// save keeps the others.
func TestStatCacheUpdate(t *testing.T) {
	s, ctx, paths := statCacheFixture(t)
	c := s.StatCache(ctx)
	if err := os.WriteFile(paths[1], []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(paths[1], &st)
	if _, ok := c.Lookup(paths[1], &st); ok {
		t.Fatalf("a rewritten file hits")
	}
	c.Add(paths[1], &st, digest.FromString("changed"))
	c.savedAt = 0
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c = s.StatCache(ctx)
	c.savedAt += 10 * racyWindow
	if d, ok := c.Lookup(paths[1], &st); !ok || d != digest.FromString("changed") {
		t.Errorf("updated entry: %q %v", d, ok)
	}
	if c.base.count != len(paths) {
		t.Errorf("%d entries after the update, want %d", c.base.count, len(paths))
	}
}
