package layer

// Change is one entry of `docker diff`: Kind is 'A' (added), 'C'
// (changed) or 'D' (deleted), Path a container path.
type Change struct {
	Kind byte
	Path string
}

func (c Change) String() string { return string(c.Kind) + " " + c.Path }
