package cache

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// deadProcess is a process that ran and is gone (reaped).
func deadProcess(t *testing.T) *Process {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start, err := processStart(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	p := &Process{PID: cmd.Process.Pid, Start: start}
	if !p.Alive() {
		t.Fatal("a running process is not alive")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if p.Alive() {
		t.Fatal("a reaped process is alive")
	}
	return p
}

// TestGCKeepsWhatLeasesHold: GC's roots are the images plus the leases in
// force; a lease whose owner process is gone (a build killed with -9) or
// that has expired holds nothing, and GC removes it.
func TestGCKeepsWhatLeasesHold(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	cases := []struct {
		kind, name string
		owner      *Process
		expires    *time.Time
		kept       bool
	}{
		{"container", "c1", nil, nil, true},
		{"build", "alive", self, nil, true},
		{"build", "killed", deadProcess(t), nil, false},
		{"pull", "expired", nil, &past, false},
		{"pull", "current", nil, &future, true},
	}
	type held struct {
		img, blob digest.Digest
		l         Layer
	}
	var hs []held
	for i, tc := range cases {
		l := importTree(t, s, map[string]string{tc.name: string(rune('a' + i))})
		id := putImage(t, s, l)
		blob, _, err := s.WriteJSON(ctx, map[string]string{"blob": tc.name})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteImage(id); err != nil {
			t.Fatal(err)
		}
		lease := Lease{Kind: tc.kind, Name: tc.name, Owner: tc.owner, Expires: tc.expires,
			Images: []digest.Digest{id}, Layers: []digest.Digest{l.DiffID}, Blobs: []digest.Digest{blob}}
		if err := s.PutLease(lease); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, held{id, blob, l})
	}
	ls, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Holder())
	}
	if want := "[build alive container c1 pull current]"; fmtList(names) != want {
		t.Errorf("leases in force: %v, want %s", names, want)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		h := hs[i]
		_, lerr := s.Layer(h.l.DiffID)
		if got := lerr == nil && s.HasBlob(h.img) && s.HasBlob(h.blob); got != tc.kept {
			t.Errorf("lease %s %s: content kept = %v (layer: %v), want %v", tc.kind, tc.name, got, lerr, tc.kept)
		}
		_, ferr := os.Stat(s.path("leases", tc.kind+"-"+tc.name+".json"))
		if (ferr == nil) != tc.kept {
			t.Errorf("lease %s %s: file still there = %v, want %v", tc.kind, tc.name, ferr == nil, tc.kept)
		}
	}

	// Released, the container's lease holds nothing any more.
	if err := s.DeleteLease("container", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLease("container", "c1"); err != nil {
		t.Errorf("releasing a released lease: %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(hs[0].l.DiffID); !errors.Is(err, ErrNotFound) {
		t.Errorf("layer of a released lease: %v, want ErrNotFound", err)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestLeasedViewHoldsWhatItMakes: a build's view of the store adds every
// layer, image and blob it commits to its lease.
func TestLeasedViewHoldsWhatItMakes(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	v := buildView(t, s, "b1")
	l := importTree(t, v, map[string]string{"made": "by the build"})
	id := putImage(t, v, l)
	blob, _, err := v.WriteJSON(ctx, map[string]string{"made": "too"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(id); err != nil {
		t.Fatal(err)
	}
	ls, err := s.Leases()
	if err != nil || len(ls) != 1 {
		t.Fatalf("leases: %v, %v", ls, err)
	}
	has := func(ds []digest.Digest, d digest.Digest) bool {
		for _, x := range ds {
			if x == d {
				return true
			}
		}
		return false
	}
	if !has(ls[0].Layers, l.DiffID) || !has(ls[0].Images, id) || !has(ls[0].Blobs, blob) || !has(ls[0].Blobs, id) {
		t.Errorf("the build's lease is %+v, missing what it made", ls[0])
	}
	// Closing the view left the store open: GC still runs through it.
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(l.DiffID); err != nil {
		t.Errorf("GC removed a layer the build's lease holds: %v", err)
	}
	if err := s.DeleteLease("build", "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(l.DiffID); !errors.Is(err, ErrNotFound) {
		t.Errorf("layer after the build released its lease: %v", err)
	}
}

func TestPutLeaseRefusesBadNames(t *testing.T) {
	s := openTestStore(t)
	for _, l := range []Lease{{Kind: "", Name: "x"}, {Kind: "a-b", Name: "x"}, {Kind: "k", Name: "../x"}, {Kind: "k", Name: ".x"}} {
		if err := s.PutLease(l); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutLease(%q, %q): %v, want ErrInvalid", l.Kind, l.Name, err)
		}
	}
}
