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
