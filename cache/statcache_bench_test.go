package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// benchStatCache fills a stat cache with n files of a real directory (as a
// build context of n files leaves it) and saves it.
func benchStatCache(b *testing.B, n int) (*Store, string, []string, []unix.Stat_t) {
	b.Helper()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.TempDir()
	paths := make([]string, n)
	sts := make([]unix.Stat_t, n)
	c := s.StatCache(ctx)
	for i := range paths {
		paths[i] = filepath.Join(ctx, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(paths[i], []byte(paths[i]), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := unix.Lstat(paths[i], &sts[i]); err != nil {
			b.Fatal(err)
		}
		c.Add(paths[i], &sts[i], digest.FromString(paths[i]))
	}
	if err := c.Save(); err != nil {
		b.Fatal(err)
	}
	return s, ctx, paths, sts
}

// BenchmarkStatCacheOpen is what a cached COPY of 12.8k files pays to load
// the stat cache of its context.
func BenchmarkStatCacheOpen(b *testing.B) {
	s, ctx, _, _ := benchStatCache(b, 12800)
	for b.Loop() {
		if c := s.StatCache(ctx); c.base.count != 12800 {
			b.Fatalf("%d entries loaded", c.base.count)
		}
	}
}

// BenchmarkStatCacheLookup is one file's lookup (with its lstat, as the
// builder does it).
func BenchmarkStatCacheLookup(b *testing.B) {
	s, ctx, paths, _ := benchStatCache(b, 12800)
	c := s.StatCache(ctx)
	c.savedAt += 10 * racyWindow // the files are old by now
	var st unix.Stat_t
	i := 0
	for b.Loop() {
		p := paths[i%len(paths)]
		i++
		if err := unix.Lstat(p, &st); err != nil {
			b.Fatal(err)
		}
		if _, ok := c.Lookup(p, &st); !ok {
			b.Fatalf("%s: not found", p)
		}
	}
}
