package layer

// PageDrops collects the large regular files a differ reads
// (DiffOptions.DropPages), so that the caller, once it has made them
// durable, drops their pages from the page cache (Drop): a new layer is
// written once and read again rarely (an export, a later step's lower), and
// on a machine that is slow to give out page-cache pages it has not used
// before, pages freed this way are the cheap ones the next build's writes
// get. Each file is held as a descriptor of its own, so renaming the layer
// directory changes nothing; the caller bounds how many (NewPageDrops),
// the first ones read are held. A PageDrops is used by one differ at a
// time; nil holds nothing.
type PageDrops struct {
	fds []int
	max int
}

// NewPageDrops returns a PageDrops that holds at most max files.
func NewPageDrops(max int) *PageDrops { return &PageDrops{max: max} }

// Len is the number of files held.
func (p *PageDrops) Len() int {
	if p == nil {
		return 0
	}
	return len(p.fds)
}
