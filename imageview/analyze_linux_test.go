package imageview

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/storetest"
)

// snap commits a snapshot made by fill as a layer of the store and returns
// its (made-up) diffID.
func snap(t *testing.T, s *cache.Store, name string, fill func(dir string)) digest.Digest {
	t.Helper()
	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	fill(sn.Dir)
	d := digest.FromString(name)
	if _, err := sn.Commit(d, 10240, false); err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t *testing.T, dir, p string, size int, fill byte, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(strings.Repeat(string(fill), size)), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

func whiteout(t *testing.T, dir, p string) {
	t.Helper()
	if err := unix.Mknod(filepath.Join(dir, p), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
}

// testImage: a base layer, a layer replacing, deleting (a whiteout, an
// opaque directory) and re-chmodding files, an empty history entry, and a
// layer replacing /a again and deleting a directory.
func testImage(t *testing.T) (*cache.Store, ocispec.Image) {
	kilntest.RequireRoot(t) // whiteouts are 0/0 character devices, opaque dirs trusted.* xattrs
	s := storetest.OpenStore(t)
	l0 := snap(t, s, "l0", func(d string) {
		write(t, d, "a", 1000, 'a', 0o644)
		write(t, d, "dir/x", 100, 'x', 0o644)
		write(t, d, "dir/y", 200, 'y', 0o644)
		write(t, d, "opq/o1", 50, 'o', 0o644)
		write(t, d, "opq/sub/o2", 60, 'o', 0o644)
		write(t, d, "hl1", 300, 'h', 0o644)
		if err := os.Link(filepath.Join(d, "hl1"), filepath.Join(d, "hl2")); err != nil {
			t.Fatal(err)
		}
		write(t, d, "meta", 10, 'm', 0o644)
		write(t, d, "same", 20, 's', 0o644)
	})
	l1 := snap(t, s, "l1", func(d string) {
		write(t, d, "a", 1500, 'b', 0o644)
		os.Mkdir(filepath.Join(d, "dir"), 0o755)
		whiteout(t, d, "dir/x")
		write(t, d, "opq/n", 5, 'n', 0o644)
		if err := unix.Setxattr(filepath.Join(d, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			t.Fatal(err)
		}
		write(t, d, "meta", 10, 'm', 0o600)
		write(t, d, "same", 20, 's', 0o644)
	})
	l3 := snap(t, s, "l3", func(d string) {
		write(t, d, "a", 1500, 'c', 0o644)
		whiteout(t, d, "dir")
	})
	img := ocispec.Image{
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l0, l1, l3}},
		History: []ocispec.History{
			{CreatedBy: "base"}, {CreatedBy: "RUN one"}, {CreatedBy: "ENV X=1", EmptyLayer: true}, {CreatedBy: "RUN three"},
		},
	}
	return s, img
}

func TestAnalyze(t *testing.T) {
	s, img := testImage(t)
	a, err := Analyze(s, "sha256:test", img)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		size                    int64
		added, changed, removed int
		wasted                  int64
	}
	want := []row{
		{1740, 12, 0, 0, 1440}, // 9 files + dir, opq, opq/sub
		{1535, 1, 3, 3, 1500},  // A opq/n; C a, meta, same; D dir/x, opq/o1, opq/sub
		{0, 0, 0, 0, 0},
		{1500, 0, 1, 1, 0}, // C a; D dir
	}
	for i, w := range want {
		l := a.Layers[i]
		if got := (row{l.Size, l.Added, l.Changed, l.Removed, l.WastedBytes}); got != w {
			t.Errorf("layer %d: got %+v, want %+v\n%+v", i, got, w, l.Files)
		}
	}
	// Sizes are the store's (what kiln history shows).
	for _, l := range a.Layers {
		if l.DiffID == "" {
			continue
		}
		if n, err := s.ContentSize(l.DiffID); err != nil || n != l.Size {
			t.Errorf("layer %d: size %d, store says %d (%v)", l.Index, l.Size, n, err)
		}
	}
	const total, wasted, user = 4775, 2940, 3035
	if a.Size != total || a.WastedBytes != wasted || a.UserSize != user {
		t.Errorf("size %d wasted %d user %d, want %d %d %d", a.Size, a.WastedBytes, a.UserSize, total, wasted, user)
	}
	if eff := 1 - float64(wasted)/total; a.Efficiency != eff || a.UserWastedPercent != float64(wasted)/user {
		t.Errorf("efficiency %v (want %v), user wasted %v", a.Efficiency, eff, a.UserWastedPercent)
	}
	// /a: the copies of layers 0 and 1 count, the surviving one not.
	if w := a.Wasted[0]; w.Path != "/a" || w.Bytes != 2500 || !slices.Equal(w.Layers, []int{0, 1}) {
		t.Errorf("top wasted file %+v", w)
	}
	var paths []string
	for _, w := range a.Wasted {
		paths = append(paths, w.Path)
	}
	if got := strings.Join(paths, " "); got != "/a /dir/y /dir/x /opq/sub/o2 /opq/o1 /same /meta" {
		t.Errorf("wasted files: %s", got)
	}
	// A deletion's size is what it removes.
	for _, f := range a.Layers[3].Files {
		if f.Path == "/dir" && (f.Change != "D" || f.Size != 200) {
			t.Errorf("rm /dir: %+v", f)
		}
	}
	// The final tree: the hard link counted once, files marked with their layer.
	var final []string
	for _, f := range a.Final() {
		final = append(final, f.Path+":"+string(rune('0'+f.Layer))+":"+f.Type)
	}
	if got := strings.Join(final, " "); got != "/a:3:file /hl1:0:file /hl2:0:hardlink /meta:1:file /opq/n:1:file /same:1:file" {
		t.Errorf("final tree: %s", got)
	}
	if ft := a.FinalTree(0); ft.Size != 1500+300+10+5+20 || ft.Children[0].Path != "/a" {
		t.Errorf("final tree size %d, first %s", ft.Size, ft.Children[0].Path)
	}
}

func TestContentChangesAndTree(t *testing.T) {
	s, img := testImage(t)
	a, err := Analyze(s, "sha256:test", img)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := a.ContentChanges(1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range cc {
		got = append(got, f.Change+" "+f.Path)
	}
	// meta (chmod) and same (rewritten with the same bytes) are left out.
	if g := strings.Join(got, ", "); g != "C /a, D /dir/x, A /opq/n, D /opq/o1, D /opq/sub" {
		t.Errorf("content changes of layer 1: %s", g)
	}
	tree := TreeOf(a.Layers[0].Files, 1)
	if tree.Size != 1740 || tree.Children[0].Path != "/a" {
		t.Errorf("tree of layer 0: size %d, first %s", tree.Size, tree.Children[0].Path)
	}
	for _, c := range tree.Children {
		if c.Path == "/opq" && (c.Size != 110 || c.Children != nil) {
			t.Errorf("/opq at depth 1: %+v", c)
		}
	}
	if full := TreeOf(a.Layers[0].Files, 0); full.Size != 1740 {
		t.Errorf("full tree size %d", full.Size)
	}
	// A deeper tree keeps /opq's children, sums intact.
	for _, c := range TreeOf(a.Layers[0].Files, 2).Children {
		if c.Path == "/opq" && (len(c.Children) != 2 || c.Children[0].Path != "/opq/sub" || c.Children[0].Size != 60) {
			t.Errorf("/opq at depth 2: %+v", c.Children)
		}
	}
}

func TestCompare(t *testing.T) {
	s, img := testImage(t)
	full, err := Analyze(s, "sha256:full", img)
	if err != nil {
		t.Fatal(err)
	}
	first := img
	first.RootFS.DiffIDs = img.RootFS.DiffIDs[:2]
	first.History = img.History[:2]
	older, err := Analyze(s, "sha256:older", first)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compare(older, full)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range c.Files {
		got = append(got, f.Change+" "+f.Path)
	}
	// /a has the same size in both but other bytes; /dir/y is gone.
	if g := strings.Join(got, ", "); g != "D /dir/y, C /a" || c.Disappeared != 200 || c.Appeared != 0 || c.Grew != 0 {
		t.Errorf("compare: %s %+v", g, c)
	}
	if c.SizeA != 1740+1535 || c.SizeB != 4775 {
		t.Errorf("sizes %d %d", c.SizeA, c.SizeB)
	}
	same, err := Compare(full, full)
	if err != nil || len(same.Files) != 0 {
		t.Errorf("an image against itself: %+v %v", same, err)
	}
}

func TestRules(t *testing.T) {
	a := &Analysis{Efficiency: 0.8, WastedBytes: 30_000_000, UserWastedPercent: 0.05}
	res, err := DefaultRules.Evaluate(a)
	if err != nil {
		t.Fatal(err)
	}
	status := func(res []RuleResult) string {
		var s []string
		for _, r := range res {
			s = append(s, r.Status)
		}
		return strings.Join(s, " ")
	}
	if got := status(res); got != "fail skip pass" || Passed(res) {
		t.Errorf("default rules: %s", got)
	}
	file := filepath.Join(t.TempDir(), ".dive-ci")
	os.WriteFile(file, []byte("rules:\n  # as dive's README\n  lowestEfficiency: 0.75\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n"), 0o644)
	r, found, err := ReadRules(file, DefaultRules)
	if err != nil || !found {
		t.Fatal(found, err)
	}
	res, _ = r.Evaluate(a)
	if got := status(res); got != "pass fail skip" || !strings.Contains(res[1].Message, "wasted-bytes=30000000 > threshold=20000000") {
		t.Errorf(".dive-ci rules: %s %+v", got, res)
	}
	if r, _, _ := ReadRules(filepath.Join(t.TempDir(), "none"), DefaultRules); r != DefaultRules {
		t.Errorf("missing file: %+v", r)
	}
	r.HighestWastedBytes = "1.5GiB"
	if res, err := r.Evaluate(a); err != nil || res[1].Status != "pass" {
		t.Errorf("1.5GiB: %v %+v", err, res)
	}
	for _, bad := range []Rules{
		{LowestEfficiency: "high", HighestWastedBytes: "disabled", HighestUserWastedPercent: "0.1"},
		{LowestEfficiency: "0.9", HighestWastedBytes: "lots", HighestUserWastedPercent: "0.1"},
	} {
		if _, err := bad.Evaluate(a); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	os.WriteFile(file, []byte("rules:\n  lowestEfficency: 0.9\n"), 0o644)
	if _, _, err := ReadRules(file, DefaultRules); err == nil || !strings.Contains(err.Error(), "lowestEfficency") {
		t.Errorf("misspelt rule: %v", err)
	}
}
