package cache

import (
	"io"

	"github.com/opencontainers/go-digest"
)

func teeTo(r io.Reader, d digest.Digester) io.Reader { return io.TeeReader(r, d.Hash()) }
