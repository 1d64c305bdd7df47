package layer

import "errors"

// ErrInvalid reports malformed input: an unknown compression name or media
// type, or a tar entry that cannot be applied as given.
var ErrInvalid = errors.New("invalid")

// ErrUnsupported reports a directory that cannot be turned into a correct
// layer diff, such as an overlay upperdir using redirect_dir or metacopy.
var ErrUnsupported = errors.New("unsupported")
