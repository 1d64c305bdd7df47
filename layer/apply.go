package layer

// IDPair is a uid and gid.
type IDPair struct{ UID, GID int }

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// OverlayWhiteouts selects how whiteouts are applied. true: ".wh.X"
	// becomes a 0/0 character device X and ".wh..wh..opq" sets
	// trusted.overlay.opaque=y on its directory, for extracting a layer into
	// its own directory that is then used as an overlay lowerdir. false:
	// ".wh.X" deletes X from dir and ".wh..wh..opq" deletes the existing
	// children of its directory that this tar did not write, for applying a
	// layer onto a flattened tree.
	OverlayWhiteouts bool
	// Chown, when non-nil, overrides every entry's uid/gid.
	Chown *IDPair
}
