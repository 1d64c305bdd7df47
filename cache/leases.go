package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Lease holds content against garbage collection for as long as its holder
// uses it, as containerd's leases do: GC's roots are the references (image
// records), the build cache records and the leases.
//
// Lifecycle: a consumer takes a lease when it starts using content
// (PutLease: a container at create, on its image and layers; Leased: a
// build at its start, growing with every layer, image and blob it makes),
// and releases it when done (DeleteLease: at rm, at the end of the build).
// A lease with an Owner ends with that process, so a build killed with -9
// pins nothing once it is gone; one with Expires ends then; one with neither
// lives until it is deleted. GC, and a process that opens the store alone,
// remove the leases that have ended.
type Lease struct {
	// Kind and Name say who holds it ("container" and its ID, "build" and
	// a build's ID): Check and Repair name the holder with them.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Owner, when set, is the process whose life the lease lasts.
	Owner *Process `json:"owner,omitempty"`
	// Expires, when set, is when the lease ends.
	Expires *time.Time `json:"expires,omitempty"`
	// Images (config digests), Layers (diffIDs) and Blobs are what it
	// holds: an image its config blob (its record, while there is one, keeps
	// the rest), a layer its record and snapshot. A container's lease names
	// its image and every layer of it, so that its rootfs outlives rmi.
	Images []digest.Digest `json:"images,omitempty"`
	Layers []digest.Digest `json:"layers,omitempty"`
	Blobs  []digest.Digest `json:"blobs,omitempty"`
}

// Holder names who holds the lease, as "container 3f2a…".
func (l Lease) Holder() string { return l.Kind + " " + l.Name }

func (l Lease) file() string { return l.Kind + "-" + l.Name + ".json" }

// ended reports whether the lease no longer holds anything.
func (l Lease) ended(now time.Time) bool {
	if l.Expires != nil && !now.Before(*l.Expires) {
		return true
	}
	return l.Owner != nil && !l.Owner.Alive()
}

func validLeasePart(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/\x00") && s != "." && s != ".." && !strings.HasPrefix(s, ".")
}

// PutLease takes (or replaces) the lease of l.Kind and l.Name, atomically.
// A lease without an Owner is on disk when PutLease returns; one with an
// Owner is not synced (a crash of the machine ends its owner anyway), so a
// build pays no fsync per layer for it.
func (s *Store) PutLease(l Lease) error {
	if !validLeasePart(l.Kind) || !validLeasePart(l.Name) || strings.Contains(l.Kind, "-") {
		return fmt.Errorf("lease %q %q: %w", l.Kind, l.Name, ErrInvalid)
	}
	if err := os.MkdirAll(s.path("leases"), 0o700); err != nil {
		return fmt.Errorf("put lease %s: %w", l.Holder(), err)
	}
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	write := s.writeFileAtomic
	if l.Owner != nil {
		write = s.replaceFile
	}
	if err := write(s.path("leases", l.file()), data); err != nil {
		return fmt.Errorf("put lease %s: %w", l.Holder(), err)
	}
	return nil
}

// DeleteLease releases the lease of kind and name; releasing one that is
// not there is not an error. What only it held goes at the next GC.
func (s *Store) DeleteLease(kind, name string) error {
	l := Lease{Kind: kind, Name: name}
	if err := os.Remove(s.path("leases", l.file())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete lease %s: %w", l.Holder(), err)
	}
	return nil
}

// Leases lists the leases in force, sorted by kind and name; leases that
// have ended and unreadable lease files are left out.
func (s *Store) Leases() ([]Lease, error) {
	all, err := s.leaseFiles()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []Lease
	for _, f := range all {
		if f.ok && !f.l.ended(now) {
			out = append(out, f.l)
		}
	}
	return out, nil
}

type leaseFile struct {
	name string
	l    Lease
	ok   bool
}

func (s *Store) leaseFiles() ([]leaseFile, error) {
	ents, err := os.ReadDir(s.path("leases"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	var out []leaseFile
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue // a lease being written (its temp file is in tmp/)
		}
		f := leaseFile{name: e.Name()}
		if data, err := os.ReadFile(s.path("leases", e.Name())); err == nil {
			f.ok = json.Unmarshal(data, &f.l) == nil && f.l.file() == e.Name()
		} else if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// sweepLeases removes the lease files of leases that have ended (and
// unreadable ones). The caller holds the store exclusively.
func (s *Store) sweepLeases() error {
	files, err := s.leaseFiles()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, f := range files {
		if !f.ok || f.l.ended(now) {
			if err := os.Remove(s.path("leases", f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove ended lease %s: %w", f.name, err)
			}
		}
	}
	return nil
}

// leaseRoots are the images, layers and blobs the leases in force hold.
func (s *Store) leaseRoots() (images, layers, blobs []digest.Digest, err error) {
	ls, err := s.Leases()
	if err != nil {
		return nil, nil, nil, err
	}
	for _, l := range ls {
		images = append(images, l.Images...)
		layers = append(layers, l.Layers...)
		blobs = append(blobs, l.Blobs...)
	}
	return images, layers, blobs, nil
}

// leaseState is the lease a Leased view adds what it makes to.
type leaseState struct {
	mu   sync.Mutex
	l    Lease
	seen map[string]bool // "image:", "layer:" or "blob:" and the digest
}

// Leased takes lease l (PutLease) and returns a view of the store that adds
// every layer, image and blob committed through it to l. The view shares
// the store's lock: closing it does nothing, and it must not outlive s.
// The caller releases the lease with DeleteLease(l.Kind, l.Name).
func (s *Store) Leased(l Lease) (*Store, error) {
	if err := s.PutLease(l); err != nil {
		return nil, err
	}
	st := &leaseState{l: l, seen: map[string]bool{}}
	for kind, ds := range map[string][]digest.Digest{"image:": l.Images, "layer:": l.Layers, "blob:": l.Blobs} {
		for _, d := range ds {
			st.seen[kind+d.String()] = true
		}
	}
	return &Store{root: s.root, lock: s.lock, view: true, lease: st, bg: s.bg}, nil
}

// hold adds what was just committed to the view's lease, if it has one.
// Content is made before it is leased, but a lease only has to hold from
// the moment its holder could rely on the content: GC waits for every
// process to close the store, so nothing goes in between.
func (s *Store) hold(images, layers, blobs []digest.Digest) error {
	st := s.lease
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	changed := false
	add := func(to *[]digest.Digest, ds []digest.Digest, kind string) {
		for _, d := range ds {
			if d != "" && !st.seen[kind+d.String()] {
				st.seen[kind+d.String()] = true
				*to = append(*to, d)
				changed = true
			}
		}
	}
	add(&st.l.Images, images, "image:")
	add(&st.l.Layers, layers, "layer:")
	add(&st.l.Blobs, blobs, "blob:")
	if !changed {
		return nil
	}
	return s.PutLease(st.l)
}
