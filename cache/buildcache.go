package cache

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// CacheRecord says that a build step with a given key produced a layer (or,
// for a WORKDIR that found its directory, produced none). Keys are derived by
// the builder from the parent step's key and everything that decides the
// step's result; a record is only ever looked up by its key.
type CacheRecord struct {
	Key    digest.Digest `json:"key"`
	Parent digest.Digest `json:"parent"`
	// DiffID is the layer the step made; empty when it made none.
	DiffID  digest.Digest `json:"diffID,omitempty"`
	Created time.Time     `json:"created"`
	// Inputs describe the step for `build --explain-cache`: what a later
	// miss is compared against.
	Inputs StepInputs `json:"inputs"`
}

// StepInputs is what went into a step's key, kept to explain cache misses.
type StepInputs struct {
	Instruction string            `json:"instruction"`
	Base        string            `json:"base,omitempty"` // "name=imageID", on the first step of a stage
	Args        map[string]string `json:"args,omitempty"`
	Env         []string          `json:"env,omitempty"`
	// Files is the digest of the file list of a COPY or ADD (see CacheFiles).
	Files digest.Digest `json:"files,omitempty"`
}

// CachedStep is a record with when it was last used.
type CachedStep struct {
	CacheRecord
	LastUsed time.Time
}

func (s *Store) recordPath(key digest.Digest) string {
	return s.path("buildcache", key.Encoded()+".json")
}

// PutCacheRecord stores a record. Its layer must be in the store (and so
// on disk: Snapshot.Commit synced it). The record itself is not synced: a
// power cut may lose it, or leave a file that does not parse (CacheRecord
// takes it for no record, Check removes it), which costs only a rebuild of
// the step, where an fsync of the record and one of its directory cost
// every RUN step of every build about a millisecond.
func (s *Store) PutCacheRecord(rec CacheRecord) error {
	if rec.DiffID != "" {
		if _, err := s.Layer(rec.DiffID); err != nil {
			return fmt.Errorf("cache record %s: %w", rec.Key, err)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.path("buildcache", "parents"), 0o700); err != nil {
		return err
	}
	if err := s.replaceFile(s.recordPath(rec.Key), data); err != nil {
		return err
	}
	// A marker per parent lets a build skip hashing a COPY's sources when no
	// record could match anyway, and one per parent and instruction names
	// the latest record made there (a re-run COPY reuses its snapshot).
	// Losing one costs only that shortcut's use.
	os.WriteFile(s.path("buildcache", "parents", rec.Parent.Encoded()), nil, 0o600)
	if os.MkdirAll(s.path("buildcache", "last"), 0o700) == nil {
		s.replaceFile(s.lastRecordPath(rec.Parent, rec.Inputs.Instruction), []byte(rec.Key))
	}
	return nil
}

func (s *Store) lastRecordPath(parent digest.Digest, instruction string) string {
	return s.path("buildcache", "last", digest.FromString(string(parent)+"\n"+instruction).Encoded())
}

// LastCacheRecord returns the latest record made with this parent and
// instruction, reading that one record only (and not marking it used). ok
// is false when there is none, or when the store has no note of it (a store
// of an older kiln, a lost note): then known says so, and only a look
// through every record can tell.
func (s *Store) LastCacheRecord(parent digest.Digest, instruction string) (rec CacheRecord, ok, known bool) {
	key, err := os.ReadFile(s.lastRecordPath(parent, instruction))
	if err != nil {
		return CacheRecord{}, false, false
	}
	d, err := digest.Parse(string(key))
	if err != nil {
		return CacheRecord{}, false, false
	}
	data, err := os.ReadFile(s.recordPath(d))
	if err != nil {
		return CacheRecord{}, false, true // removed since: none
	}
	if json.Unmarshal(data, &rec) != nil || rec.Key != d || rec.Parent != parent || rec.Inputs.Instruction != instruction {
		return CacheRecord{}, false, false
	}
	return rec, true, true
}

// HasCacheChildren reports whether some record may have this parent key.
func (s *Store) HasCacheChildren(parent digest.Digest) bool {
	if parent.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.path("buildcache", "parents", parent.Encoded()))
	return err == nil
}

// CacheRecord returns the record for key, if its layer is still in the store,
// and marks it used now (its file's mtime is the last use, for pruning).
func (s *Store) CacheRecord(key digest.Digest) (CacheRecord, bool) {
	p := s.recordPath(key)
	data, err := os.ReadFile(p)
	if err != nil {
		return CacheRecord{}, false
	}
	var rec CacheRecord
	if json.Unmarshal(data, &rec) != nil || rec.Key != key {
		return CacheRecord{}, false
	}
	if rec.DiffID != "" {
		if _, err := s.Layer(rec.DiffID); err != nil {
			return CacheRecord{}, false
		}
	}
	now := time.Now()
	os.Chtimes(p, now, now)
	return rec, true
}

// CacheRecords lists every record with its last use, most recently used first.
func (s *Store) CacheRecords() ([]CachedStep, error) {
	ents, err := os.ReadDir(s.path("buildcache"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CachedStep
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		data, err := os.ReadFile(s.path("buildcache", e.Name()))
		if err != nil {
			continue
		}
		var rec CacheRecord
		if json.Unmarshal(data, &rec) != nil {
			continue
		}
		out = append(out, CachedStep{CacheRecord: rec, LastUsed: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// RemoveCacheRecord forgets a record; its layer goes with the next GC unless
// something else uses it.
func (s *Store) RemoveCacheRecord(key digest.Digest) error {
	err := os.Remove(s.recordPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// PutCacheFiles stores the file list of a COPY (a JSON object: path → entry
// description, written by write) under its digest, for explaining later
// misses. The list is streamed to its file, never held: a COPY may have
// 100,000 files. It is not synced: a lost list only makes a later
// explanation vaguer.
func (s *Store) PutCacheFiles(d digest.Digest, write func(io.Writer) error) error {
	p := s.path("buildcache", "files", d.Encoded()+".json")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.path("buildcache", "files"), 0o700); err != nil {
		return err
	}
	f, err := s.tempFile(filepath.Base(p) + ".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// CacheFiles reads a file list stored by PutCacheFiles.
func (s *Store) CacheFiles(d digest.Digest) (map[string]string, error) {
	data, err := os.ReadFile(s.path("buildcache", "files", d.Encoded()+".json"))
	if err != nil {
		return nil, err
	}
	var files map[string]string
	return files, json.Unmarshal(data, &files)
}
