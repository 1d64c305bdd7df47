package cache

import (
	"context"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestLastCacheRecord: the latest record per parent and instruction is
// found by reading it alone, a removed one is reported gone, and GC drops
// the note with its record.
func TestLastCacheRecord(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	parent := digest.FromString("parent")
	if _, ok, known := s.LastCacheRecord(parent, "COPY a /a"); ok || known {
		t.Fatalf("empty store: ok %v known %v", ok, known)
	}
	put := func(key, instr string) CacheRecord {
		rec := CacheRecord{Key: digest.FromString(key), Parent: parent, Inputs: StepInputs{Instruction: instr}}
		if err := s.PutCacheRecord(rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	put("k1", "COPY a /a")
	second := put("k2", "COPY a /a")
	other := put("k3", "COPY b /b")
	for _, want := range []CacheRecord{second, other} {
		rec, ok, known := s.LastCacheRecord(parent, want.Inputs.Instruction)
		if !ok || !known || rec.Key != want.Key {
			t.Errorf("%s: got %s (ok %v, known %v), want %s", want.Inputs.Instruction, rec.Key, ok, known, want.Key)
		}
	}
	if _, ok, _ := s.LastCacheRecord(digest.FromString("other parent"), "COPY a /a"); ok {
		t.Errorf("found under another parent")
	}
	// A note naming a record of another parent (a damaged note) is no answer.
	if err := os.WriteFile(s.lastRecordPath(parent, "COPY b /b"), []byte(second.Key), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, known := s.LastCacheRecord(parent, "COPY b /b"); ok || known {
		t.Errorf("a note naming another step's record: ok %v known %v", ok, known)
	}
	if err := s.RemoveCacheRecord(second.Key); err != nil {
		t.Fatal(err)
	}
	if _, ok, known := s.LastCacheRecord(parent, "COPY a /a"); ok || !known {
		t.Errorf("removed record: ok %v known %v", ok, known)
	}
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.lastRecordPath(parent, "COPY a /a")); err == nil {
		t.Errorf("GC kept the note of a removed record")
	}
}

// TestCacheRecordsAfterPowerCut: cache records are not synced (their layer
// is), so a power cut may leave of one an empty file, a truncated one, the
// stale blocks of another record, or nothing. Each is no record to a
// lookup, Check names it, repair removes it, and the layer is kept.
func TestCacheRecordsAfterPowerCut(t *testing.T) {
	s := openTestStore(t)
	l := importTree(t, s, map[string]string{"a": "a"})
	parent := digest.FromString("p")
	var keys []digest.Digest
	for _, k := range []string{"empty", "truncated", "stale", "lost", "whole"} {
		rec := CacheRecord{Key: digest.FromString(k), Parent: parent, DiffID: l.DiffID, Inputs: StepInputs{Instruction: "RUN " + k}}
		if err := s.PutCacheRecord(rec); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Key)
	}
	data, err := os.ReadFile(s.recordPath(keys[1]))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(s.recordPath(keys[4]))
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string][]byte{s.recordPath(keys[0]): nil, s.recordPath(keys[1]): data[:len(data)/2], s.recordPath(keys[2]): other} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(s.recordPath(keys[3])); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[:4] {
		if rec, ok := s.CacheRecord(k); ok {
			t.Errorf("damaged record %s found: %+v", k, rec)
		}
	}
	if _, ok := s.CacheRecord(keys[4]); !ok {
		t.Error("the whole record is not found")
	}
	rep := check(t, s, CheckOptions{})
	for _, k := range keys[:3] {
		if len(problemsAbout(rep, s.recordPath(k))) == 0 {
			t.Errorf("no problem reported about record %s: %v", k, rep.Problems)
		}
	}
	if rep = check(t, s, CheckOptions{Repair: true}); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Problems)
	}
	if again := check(t, s, CheckOptions{}); len(again.Problems) != 0 {
		t.Errorf("after repair: %v", again.Problems)
	}
	if _, err := s.Layer(l.DiffID); err != nil {
		t.Errorf("the layer went with its damaged records: %v", err)
	}
	if _, ok := s.CacheRecord(keys[4]); !ok {
		t.Error("repair removed the whole record")
	}
}
