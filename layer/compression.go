package layer

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
)

// Compression names the compression of a layer blob.
type Compression string

const (
	Uncompressed Compression = "uncompressed"
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	// Bzip2 and Xz are only ever reported by Decompress: layers are never
	// written with them and they have no OCI media type.
	Bzip2 Compression = "bzip2"
	Xz    Compression = "xz"
)

// Fixed encoder settings: changing any of them changes every layer digest.
const (
	gzipLevel = gzip.BestSpeed
	zstdLevel = zstd.SpeedDefault
)

// Docker's layer media types, accepted when reading.
const (
	dockerLayerGzip        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerTar         = "application/vnd.docker.image.rootfs.diff.tar"
	dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ParseCompression parses a user-facing compression name: "gzip", "zstd",
// or "uncompressed" (alias "none").
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "gzip":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	case "uncompressed", "none":
		return Uncompressed, nil
	}
	return "", fmt.Errorf("parse compression %q: %w", s, ErrInvalid)
}

// MediaType returns the OCI layer media type for c, or "" if c cannot be
// used to write layers.
func (c Compression) MediaType() string {
	switch c {
	case Uncompressed:
		return ocispec.MediaTypeImageLayer
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ""
}

// CompressionFromMediaType maps an OCI or Docker layer media type to its
// compression.
func CompressionFromMediaType(mt string) (Compression, error) {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerNonDistributable, dockerLayerTar: //nolint:staticcheck // still found in the wild
		return Uncompressed, nil
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerNonDistributableGzip, dockerLayerGzip, dockerForeignLayerGzip: //nolint:staticcheck
		return Gzip, nil
	case ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return Zstd, nil
	}
	return "", fmt.Errorf("layer media type %q: %w", mt, ErrInvalid)
}

// Compress returns a writer that compresses into w with c. The output is
// deterministic: the same input always yields the same bytes, however it is
// split into writes. Close flushes the compressor; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		// A zero Header: no name, no mtime, so nothing varies between runs.
		zw, err := gzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, fmt.Errorf("create gzip writer: %w", err)
		}
		return zw, nil
	case Zstd:
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			return nil, fmt.Errorf("create zstd writer: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("compress with %q: %w", c, ErrInvalid)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Decompress sniffs the compression of r from its first bytes and returns a
// streaming reader of the uncompressed data together with the compression
// found (gzip, zstd, bzip2, xz, or Uncompressed for anything else). Closing
// the returned reader releases the decompressor; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXz))
	if err != nil && err != io.EOF {
		return nil, "", fmt.Errorf("detect compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("open gzip stream: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", fmt.Errorf("open zstd stream: %w", err)
		}
		return zstdReadCloser{zr}, Zstd, nil
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), Bzip2, nil
	case bytes.HasPrefix(head, magicXz):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("open xz stream: %w", err)
		}
		return io.NopCloser(xr), Xz, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

type zstdReadCloser struct{ d *zstd.Decoder }

func (z zstdReadCloser) Read(p []byte) (int, error) { return z.d.Read(p) }

func (z zstdReadCloser) Close() error {
	z.d.Close()
	return nil
}
