package layer

import "time"

// DiffOptions tunes WriteDiff.
type DiffOptions struct {
	// SourceDateEpoch, when non-nil, clamps every entry's mtime to at most
	// this time.
	SourceDateEpoch *time.Time
	// Writeback starts writing each large regular file's data to disk as
	// soon as the differ has read it, without waiting for the writes: for
	// a directory the caller syncs next (a new layer), whose sync then
	// finds most of the data on disk already instead of writing it all
	// after the diff. Linux only; a hint, never an error.
	Writeback bool
	// DropPages, when non-nil, collects the regular files of at least
	// dropPagesMin bytes (as many as it holds) for the caller to
	// drop from the page cache once it has synced them (PageDrops.Drop).
	// The tar is the same with it or without.
	DropPages *PageDrops
}

const (
	copyBufferSize = 1 << 20
	tarBufferSize  = 256 << 10
	// smallBufferSize is the first size of the buffers that grow to
	// copyBufferSize or hashBufferSize when the layer needs them.
	smallBufferSize = 64 << 10
)
