package imageview

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// FileDiff is a file of the final trees that differs between two images.
type FileDiff struct {
	Path string `json:"path"`
	// Change is A (only in the second image), D (only in the first) or C
	// (in both, with other content).
	Change string `json:"change"`
	SizeA  int64  `json:"sizeA"`
	SizeB  int64  `json:"sizeB"`
	Delta  int64  `json:"delta"` // SizeB − SizeA
}

// Comparison is what `kiln layers --compare A B` shows.
type Comparison struct {
	// ImageA and ImageB are the image IDs.
	ImageA digest.Digest `json:"imageA"`
	ImageB digest.Digest `json:"imageB"`
	// SizeA, SizeB: the images' sizes (sums of their layers' sizes);
	// WastedA, WastedB: their wasted bytes.
	SizeA   int64 `json:"sizeA"`
	SizeB   int64 `json:"sizeB"`
	WastedA int64 `json:"wastedA"`
	WastedB int64 `json:"wastedB"`
	// Appeared, Disappeared: bytes of the files only in B, only in A;
	// Grew, Shrank: the sums of the positive and negative deltas of the
	// files in both.
	Appeared    int64 `json:"appeared"`
	Disappeared int64 `json:"disappeared"`
	Grew        int64 `json:"grew"`
	Shrank      int64 `json:"shrank"`
	// Files are the differing files, the biggest |Delta| first (then
	// path order).
	Files []FileDiff `json:"files"`
}

// Compare compares the final trees of two analysed images. Files of the
// same size from different layers are compared byte for byte.
func Compare(a, b *Analysis) (*Comparison, error) {
	c := &Comparison{ImageA: a.Image, ImageB: b.Image, SizeA: a.Size, SizeB: b.Size, WastedA: a.WastedBytes, WastedB: b.WastedBytes}
	fa, fb := a.Final(), b.Final()
	i, j := 0, 0
	for i < len(fa) || j < len(fb) {
		switch {
		case j >= len(fb) || (i < len(fa) && fa[i].Path < fb[j].Path):
			c.Files = append(c.Files, FileDiff{Path: fa[i].Path, Change: "D", SizeA: fa[i].Size, Delta: -fa[i].Size})
			c.Disappeared += fa[i].Size
			i++
		case i >= len(fa) || fb[j].Path < fa[i].Path:
			c.Files = append(c.Files, FileDiff{Path: fb[j].Path, Change: "A", SizeB: fb[j].Size, Delta: fb[j].Size})
			c.Appeared += fb[j].Size
			j++
		default:
			x, y := fa[i], fb[j]
			i++
			j++
			same, err := sameFinal(x, y)
			if err != nil {
				return nil, fmt.Errorf("compare %s: %w", x.Path, err)
			}
			if same {
				continue
			}
			d := FileDiff{Path: x.Path, Change: "C", SizeA: x.Size, SizeB: y.Size, Delta: y.Size - x.Size}
			if d.Delta > 0 {
				c.Grew += d.Delta
			} else {
				c.Shrank -= d.Delta
			}
			c.Files = append(c.Files, d)
		}
	}
	slices.SortStableFunc(c.Files, func(x, y FileDiff) int {
		return cmp.Or(cmp.Compare(abs(y.Delta), abs(x.Delta)), strings.Compare(x.Path, y.Path))
	})
	return c, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func sameFinal(x, y FinalFile) (bool, error) {
	if x.diffID == y.diffID {
		return true, nil // the same layer wrote both
	}
	if x.Type != y.Type || x.Size != y.Size {
		return false, nil
	}
	return sameContent(&prevCopy{snapshot: x.snapshot, file: File{Path: x.Path}}, filepath.Join(y.snapshot, y.Path))
}
