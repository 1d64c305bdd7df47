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
// table of fixed-size records sorted by a 64-bit hash of the path, and a
// CRC-32C of both. A file that is short, of another version, or fails its
// checksum is an empty cache (a miss costs a re-hash). Two paths of one hash
// share a record, the last one added: a wrong hit is impossible, as a hit
// also needs the same inode, device, size, mtime and ctime — the same file,
// unchanged.
type StatCache struct {
	path    string
	mu      sync.Mutex
	base    statTable            // as loaded
	added   map[uint64]statEntry // since, by path hash; these win over base
	savedAt int64                // UnixNano of the last save; entries changed after it are not trusted
	dirty   bool
}

type statEntry struct {
	Size         int64
	Mtime, Ctime int64
	Ino, Dev     uint64
	Sum          [32]byte // sha256 of the content (not its digest's text: a COPY of 100,000 files adds 100,000)
}

// racyWindow covers coarse file timestamps: a change this close to a save may
// not have moved mtime or ctime.
const racyWindow = int64(time.Second)

// statCacheExt names the stat cache files in statcache/; anything else there
// is a killed save's temp file.
const statCacheExt = ".idx"

// The file's layout (little-endian):
//
//	header  magic [8]byte, savedAt int64, count uint32, zero uint32
//	records count × {pathHash uint64; size, mtime, ctime int64; ino, dev uint64; sha256 [32]byte}, sorted by pathHash
//	crc     uint32, CRC-32C of everything before it
const (
	statMagic     = "kilnSC\x00\x02" // the last byte is the version
	statHeaderLen = 24
	statRecordLen = 6*8 + 32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pathHash is FNV-1a of path: stable across processes, as the file needs.
func pathHash(path string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= 1099511628211
	}
	return h
}

// statTable is a loaded stat cache file: records sorted by path hash.
type statTable struct {
	records []byte
	count   int
}

func (t *statTable) key(i int) uint64 {
	return binary.LittleEndian.Uint64(t.records[i*statRecordLen:])
}

func (t *statTable) entry(i int) (e statEntry) {
	r := t.records[i*statRecordLen+8:]
	e.Size = int64(binary.LittleEndian.Uint64(r[0:]))
	e.Mtime = int64(binary.LittleEndian.Uint64(r[8:]))
	e.Ctime = int64(binary.LittleEndian.Uint64(r[16:]))
	e.Ino = binary.LittleEndian.Uint64(r[24:])
	e.Dev = binary.LittleEndian.Uint64(r[32:])
	copy(e.Sum[:], r[40:72])
	return e
}

// find returns the index of the record of path hash k, or -1.
func (t *statTable) find(k uint64) int {
	lo, hi := 0, t.count
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.key(m) < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < t.count && t.key(lo) == k {
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
	count := uint64(binary.LittleEndian.Uint32(data[16:]))
	if uint64(len(body)) != statHeaderLen+count*statRecordLen {
		return t, 0, false
	}
	return statTable{records: body[statHeaderLen:], count: int(count)}, savedAt, true
}

// StatCache opens the stat cache of a build context directory. A missing or
// unreadable cache is empty.
func (s *Store) StatCache(contextDir string) *StatCache {
	sum := sha256.Sum256([]byte(contextDir))
	c := &StatCache{path: s.path("statcache", hex.EncodeToString(sum[:16])+statCacheExt), added: map[uint64]statEntry{}}
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
	k := pathHash(path)
	c.mu.Lock()
	e, ok := c.added[k]
	if !ok {
		if i := c.base.find(k); i >= 0 {
			e = c.base.entry(i)
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
	return sha256Digest(e.Sum[:]), true
}

// sha256Digest is the digest of a raw sha256 sum, in one allocation.
func sha256Digest(sum []byte) digest.Digest {
	const prefix = "sha256:"
	var b [len(prefix) + 64]byte
	copy(b[:], prefix)
	hex.Encode(b[len(prefix):], sum)
	return digest.Digest(b[:])
}

// Add records the digest of path as hashed with stat st (taken before reading).
func (c *StatCache) Add(path string, st *unix.Stat_t, d digest.Digest) {
	e := statEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: st.Dev}
	if enc := d.Encoded(); d.Algorithm() != digest.SHA256 || len(enc) != hex.EncodedLen(len(e.Sum)) {
		return // the cache keeps sha256 sums only
	} else if _, err := hex.Decode(e.Sum[:], []byte(enc)); err != nil {
		return
	}
	k := pathHash(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.added[k]; ok && old == e {
		return
	}
	if i := c.base.find(k); i >= 0 {
		if c.base.entry(i) == e {
			return
		}
	}
	c.added[k] = e
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
		if e := c.base.entry(i); isRacy(e) {
			return true
		}
	}
	return false
}

// write writes the merged table (added entries over base) to f.
func (c *StatCache) write(f *os.File, savedAt int64) error {
	added := make([]uint64, 0, len(c.added))
	for k := range c.added {
		added = append(added, k)
	}
	slices.Sort(added)
	count := len(added)
	for i := range c.base.count {
		if _, ok := c.added[c.base.key(i)]; !ok {
			count++
		}
	}
	if count > 1<<31 {
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
	binary.LittleEndian.PutUint32(b[16:], uint32(count))
	binary.LittleEndian.PutUint32(b[20:], 0)
	out(b[:statHeaderLen])
	// Merge the two sorted runs.
	i := 0
	for _, k := range added {
		for ; i < c.base.count && c.base.key(i) <= k; i++ {
			if _, ok := c.added[c.base.key(i)]; !ok {
				out(c.base.records[i*statRecordLen : (i+1)*statRecordLen])
			}
		}
		e := c.added[k]
		binary.LittleEndian.PutUint64(b[0:], k)
		binary.LittleEndian.PutUint64(b[8:], uint64(e.Size))
		binary.LittleEndian.PutUint64(b[16:], uint64(e.Mtime))
		binary.LittleEndian.PutUint64(b[24:], uint64(e.Ctime))
		binary.LittleEndian.PutUint64(b[32:], e.Ino)
		binary.LittleEndian.PutUint64(b[40:], e.Dev)
		copy(b[48:80], e.Sum[:])
		out(b[:])
	}
	for ; i < c.base.count; i++ {
		if _, ok := c.added[c.base.key(i)]; !ok {
			out(c.base.records[i*statRecordLen : (i+1)*statRecordLen])
		}
	}
	binary.LittleEndian.PutUint32(b[:4], crc.Sum32())
	w.Write(b[:4])
	return w.Flush()
}
