package cache

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
//
// On disk it is one file read in one go and searched in place: a header, a
// table of fixed-size records sorted by path, the paths, and a CRC-32C of
// all that. A file that is short, of another version, or fails its checksum
// is an empty cache (a miss costs a re-hash; a wrong hit is never possible).
type StatCache struct {
	path    string
	mu      sync.Mutex
	base    statTable            // as loaded
	added   map[string]statEntry // since, by path; these win over base
	savedAt int64                // UnixNano of the last save; entries changed after it are not trusted
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

// statCacheExt names the stat cache files in statcache/; anything else there
// is a killed save's temp file.
const statCacheExt = ".idx"

// The file's layout (little-endian):
//
//	header  magic [8]byte, savedAt int64, count uint32, pathBytes uint32
//	records count × {size, mtime, ctime int64; ino, dev uint64; sha256 [32]byte; pathOff, pathLen uint32}
//	paths   pathBytes bytes
//	crc     uint32, CRC-32C of everything before it
const (
	statMagic     = "kilnSC\x00\x01" // the last byte is the version
	statHeaderLen = 24
	statRecordLen = 5*8 + 32 + 2*4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// statTable is a loaded stat cache file: records sorted by path.
type statTable struct {
	records []byte
	paths   []byte
	count   int
}

func (t *statTable) path(i int) []byte {
	r := t.records[i*statRecordLen:]
	off, n := binary.LittleEndian.Uint32(r[72:]), binary.LittleEndian.Uint32(r[76:])
	if uint64(off)+uint64(n) > uint64(len(t.paths)) {
		return nil // a corrupt offset that passed the checksum: never matches
	}
	return t.paths[off : off+n]
}

func (t *statTable) entry(i int) (e statEntry, sum []byte) {
	r := t.records[i*statRecordLen:]
	e.Size = int64(binary.LittleEndian.Uint64(r[0:]))
	e.Mtime = int64(binary.LittleEndian.Uint64(r[8:]))
	e.Ctime = int64(binary.LittleEndian.Uint64(r[16:]))
	e.Ino = binary.LittleEndian.Uint64(r[24:])
	e.Dev = binary.LittleEndian.Uint64(r[32:])
	return e, r[40:72]
}

// find returns the index of path's record, or -1.
func (t *statTable) find(path string) int {
	lo, hi := 0, t.count
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(t.path(m)) < path {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < t.count && string(t.path(lo)) == path {
		return lo
	}
	return -1
}

// parseStatTable checks a stat cache file; ok is false for anything but a
// whole file of this version.
func parseStatTable(data []byte) (t statTable, savedAt int64, ok bool) {
	if len(data) < statHeaderLen+4 || string(data[:8]) != statMagic {
		return t, 0, false
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(body):]) {
		return t, 0, false
	}
	savedAt = int64(binary.LittleEndian.Uint64(data[8:]))
	count, pathBytes := uint64(binary.LittleEndian.Uint32(data[16:])), uint64(binary.LittleEndian.Uint32(data[20:]))
	if uint64(len(body)) != statHeaderLen+count*statRecordLen+pathBytes {
		return t, 0, false
	}
	recEnd := statHeaderLen + int(count)*statRecordLen
	return statTable{records: body[statHeaderLen:recEnd], paths: body[recEnd:], count: int(count)}, savedAt, true
}

// StatCache opens the stat cache of a build context directory. A missing or
// unreadable cache is empty.
func (s *Store) StatCache(contextDir string) *StatCache {
	sum := sha256.Sum256([]byte(contextDir))
	c := &StatCache{path: s.path("statcache", hex.EncodeToString(sum[:16])+statCacheExt), added: map[string]statEntry{}}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return c
	}
	if t, savedAt, ok := parseStatTable(data); ok {
		c.base, c.savedAt = t, savedAt
	}
	return c
}

// Lookup returns the digest cached for path if st says the file has not changed.
func (c *StatCache) Lookup(path string, st *unix.Stat_t) (digest.Digest, bool) {
	c.mu.Lock()
	e, ok := c.added[path]
	var sum []byte
	if !ok {
		if i := c.base.find(path); i >= 0 {
			e, sum = c.base.entry(i)
			ok = true
		}
	}
	c.mu.Unlock()
	if !ok || e.Size != st.Size || e.Mtime != st.Mtim.Nano() || e.Ctime != st.Ctim.Nano() || e.Ino != st.Ino || e.Dev != st.Dev {
		return "", false
	}
	if e.Mtime >= c.savedAt-racyWindow || e.Ctime >= c.savedAt-racyWindow {
		return "", false
	}
	if sum != nil {
		return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum)), true
	}
	return e.Digest, true
}

// Add records the digest of path as hashed with stat st (taken before reading).
func (c *StatCache) Add(path string, st *unix.Stat_t, d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := statEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: st.Dev, Digest: d}
	if old, ok := c.added[path]; ok && old == e {
		return
	}
	if i := c.base.find(path); i >= 0 {
		old, sum := c.base.entry(i)
		old.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum))
		if old == e {
			return
		}
	}
	c.added[path] = e
	c.dirty = true
}

// Save writes the cache back when it changed or holds racily clean entries
// that a later save makes trustworthy. The file is replaced atomically.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UnixNano()
	if !c.dirty && !c.racy() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(c.path), "statcache.*")
	if err != nil {
		return err
	}
	err = c.write(f, now)
	if cerr := f.Close(); err == nil {
		err = cerr
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

// racy reports whether an entry was changed too close to the last save to be
// trusted yet.
func (c *StatCache) racy() bool {
	isRacy := func(e statEntry) bool { return e.Mtime >= c.savedAt-racyWindow || e.Ctime >= c.savedAt-racyWindow }
	for _, e := range c.added {
		if isRacy(e) {
			return true
		}
	}
	for i := range c.base.count {
		if e, _ := c.base.entry(i); isRacy(e) {
			return true
		}
	}
	return false
}

// write writes the merged table (added entries over base) to f.
func (c *StatCache) write(f *os.File, savedAt int64) error {
	// The merge: base's records not replaced, and the added ones, by path.
	type rec struct {
		path string
		base int // index in base, or -1 for added[path]
	}
	recs := make([]rec, 0, c.base.count+len(c.added))
	for i := range c.base.count {
		p := c.base.path(i)
		if p == nil {
			continue
		}
		if _, ok := c.added[string(p)]; !ok {
			recs = append(recs, rec{string(p), i})
		}
	}
	for p, e := range c.added {
		if e.Digest.Algorithm() == digest.SHA256 && e.Digest.Validate() == nil {
			recs = append(recs, rec{p, -1})
		}
	}
	slices.SortFunc(recs, func(a, b rec) int { return strings.Compare(a.path, b.path) })
	recs = slices.CompactFunc(recs, func(a, b rec) bool { return a.path == b.path })
	var pathBytes uint64
	for _, r := range recs {
		pathBytes += uint64(len(r.path))
	}
	if uint64(len(recs)) > 1<<31 || pathBytes > 1<<31 {
		return os.ErrInvalid
	}
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(f, 256<<10)
	out := func(b []byte) {
		w.Write(b)
		crc.Write(b)
	}
	var b [statRecordLen]byte
	copy(b[:], statMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(savedAt))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(recs)))
	binary.LittleEndian.PutUint32(b[20:], uint32(pathBytes))
	out(b[:statHeaderLen])
	var off uint32
	for _, r := range recs {
		if r.base >= 0 {
			copy(b[:], c.base.records[r.base*statRecordLen:(r.base+1)*statRecordLen])
		} else {
			e := c.added[r.path]
			binary.LittleEndian.PutUint64(b[0:], uint64(e.Size))
			binary.LittleEndian.PutUint64(b[8:], uint64(e.Mtime))
			binary.LittleEndian.PutUint64(b[16:], uint64(e.Ctime))
			binary.LittleEndian.PutUint64(b[24:], e.Ino)
			binary.LittleEndian.PutUint64(b[32:], e.Dev)
			if _, err := hex.Decode(b[40:72], []byte(e.Digest.Encoded())); err != nil {
				return err
			}
		}
		binary.LittleEndian.PutUint32(b[72:], off)
		binary.LittleEndian.PutUint32(b[76:], uint32(len(r.path)))
		off += uint32(len(r.path))
		out(b[:])
	}
	for _, r := range recs {
		out([]byte(r.path))
	}
	binary.LittleEndian.PutUint32(b[:4], crc.Sum32())
	w.Write(b[:4])
	return w.Flush()
}
