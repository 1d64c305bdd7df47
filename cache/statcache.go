package cache

import (
	"bufio"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// StatCache remembers the content digest of build context files by path,
// size, mtime, ctime, inode and device, like git's index, so that an
// unchanged file is not read again. It only makes hashing faster: an entry is
// trusted when every one of those fields matches and the file was last changed
// well before the entry was saved (a file changed within the same clock tick
// as the save — "racily clean" in git's words — is hashed again).
type StatCache struct {
	path    string
	mu      sync.Mutex
	entries map[string]statEntry
	savedAt int64 // UnixNano of the last save; entries changed after it are not trusted
	dirty   bool
}

type statEntry struct {
	Size         int64
	Mtime, Ctime int64
	Ino, Dev     uint64
	Digest       digest.Digest
}

// racyWindow covers coarse file timestamps: a change this close to a save may
// not have moved mtime or ctime.
const racyWindow = int64(time.Second)

// StatCache opens the stat cache of a build context directory. A missing or
// unreadable cache is empty.
func (s *Store) StatCache(contextDir string) *StatCache {
	sum := sha256.Sum256([]byte(contextDir))
	c := &StatCache{path: s.path("statcache", hex.EncodeToString(sum[:16])+".gob"), entries: map[string]statEntry{}}
	f, err := os.Open(c.path)
	if err != nil {
		return c
	}
	defer f.Close()
	var onDisk struct {
		SavedAt int64
		Entries map[string]statEntry
	}
	if gob.NewDecoder(bufio.NewReader(f)).Decode(&onDisk) == nil && onDisk.Entries != nil {
		c.entries, c.savedAt = onDisk.Entries, onDisk.SavedAt
	}
	return c
}

// Lookup returns the digest cached for path if st says the file has not changed.
func (c *StatCache) Lookup(path string, st *unix.Stat_t) (digest.Digest, bool) {
	c.mu.Lock()
	e, ok := c.entries[path]
	c.mu.Unlock()
	if !ok || e.Size != st.Size || e.Mtime != st.Mtim.Nano() || e.Ctime != st.Ctim.Nano() || e.Ino != st.Ino || e.Dev != st.Dev {
		return "", false
	}
	if e.Mtime >= c.savedAt-racyWindow || e.Ctime >= c.savedAt-racyWindow {
		return "", false
	}
	return e.Digest, true
}

// Add records the digest of path as hashed with stat st (taken before reading).
func (c *StatCache) Add(path string, st *unix.Stat_t, d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := statEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: st.Dev, Digest: d}
	if old, ok := c.entries[path]; ok && old == e {
		return
	}
	c.entries[path] = e
	c.dirty = true
}

// Save writes the cache back when it changed or holds racily clean entries
// that a later save makes trustworthy.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixNano()
	if !c.dirty {
		racy := false
		for _, e := range c.entries {
			if e.Mtime >= c.savedAt-racyWindow || e.Ctime >= c.savedAt-racyWindow {
				racy = true
				break
			}
		}
		if !racy {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(c.path), "statcache.*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = gob.NewEncoder(w).Encode(struct {
		SavedAt int64
		Entries map[string]statEntry
	}{now, c.entries})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err == nil {
		// A lost stat cache costs only a re-hash: no fsync needed.
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	c.savedAt, c.dirty = now, false
	return nil
}
