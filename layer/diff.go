package layer

import "time"

// DiffOptions tunes WriteDiff.
type DiffOptions struct {
	// SourceDateEpoch, when non-nil, clamps every entry's mtime to at most
	// this time.
	SourceDateEpoch *time.Time
}

const (
	copyBufferSize = 1 << 20
	tarBufferSize  = 256 << 10
	// smallBufferSize is the first size of the buffers that grow to
	// copyBufferSize or hashBufferSize when the layer needs them.
	smallBufferSize = 64 << 10
)
