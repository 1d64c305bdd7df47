package layer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
)

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{
		"gzip": Gzip, "zstd": Zstd, "uncompressed": Uncompressed, "none": Uncompressed, "GZIP": Gzip, " zstd ": Zstd,
	} {
		got, err := ParseCompression(in)
		if err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "bzip2", "xz", "lz4", "gz"} {
		if _, err := ParseCompression(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCompression(%q) err = %v, want ErrInvalid", in, err)
		}
	}
}

func TestMediaTypes(t *testing.T) {
	for c, mt := range map[Compression]string{
		Uncompressed:       ocispec.MediaTypeImageLayer,
		Gzip:               ocispec.MediaTypeImageLayerGzip,
		Zstd:               ocispec.MediaTypeImageLayerZstd,
		Bzip2:              "",
		Compression("lz4"): "",
	} {
		if got := c.MediaType(); got != mt {
			t.Errorf("%q.MediaType() = %q, want %q", c, got, mt)
		}
	}
	for mt, want := range map[string]Compression{
		ocispec.MediaTypeImageLayer:                                 Uncompressed,
		ocispec.MediaTypeImageLayerGzip:                             Gzip,
		ocispec.MediaTypeImageLayerZstd:                             Zstd,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":         Gzip,
		"application/vnd.docker.image.rootfs.diff.tar":              Uncompressed,
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Gzip,
	} {
		got, err := CompressionFromMediaType(mt)
		if err != nil || got != want {
			t.Errorf("CompressionFromMediaType(%q) = %q, %v; want %q", mt, got, err, want)
		}
	}
	for _, mt := range []string{"", ocispec.MediaTypeImageManifest, "application/vnd.oci.image.layer.v1.tar+lz4"} {
		if _, err := CompressionFromMediaType(mt); !errors.Is(err, ErrInvalid) {
			t.Errorf("CompressionFromMediaType(%q) err = %v, want ErrInvalid", mt, err)
		}
	}
}

// sample is compressible but not trivially so, and spans several blocks.
func sample() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"layer ", "tar ", "overlay ", "whiteout ", "digest ", "\n", "kiln "}
	var b bytes.Buffer
	for b.Len() < 3<<20 {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(50) == 0 {
			b.WriteByte(byte(rng.Uint32()))
		}
	}
	return b.Bytes()
}

func compress(t testing.TB, data []byte, c Compression, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := Compress(&out, c)
	must(t, err)
	for len(data) > 0 {
		n := min(chunk, len(data))
		_, err := w.Write(data[:n])
		must(t, err)
		data = data[n:]
	}
	must(t, w.Close())
	return out.Bytes()
}

func TestCompressDeterministicRoundTrip(t *testing.T) {
	data := sample()
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		a := compress(t, data, c, 1<<20)
		b := compress(t, data, c, 4093) // different write sizes, same bytes
		if !bytes.Equal(a, b) {
			t.Errorf("%s: output depends on write sizes", c)
		}
		if c != Uncompressed && len(a) >= len(data)/2 {
			t.Errorf("%s: %d bytes compressed to %d", c, len(data), len(a))
		}
		r, got, err := Decompress(bytes.NewReader(a))
		must(t, err)
		if got != c {
			t.Errorf("Decompress detected %q, want %q", got, c)
		}
		back, err := io.ReadAll(r)
		must(t, err)
		must(t, r.Close())
		if !bytes.Equal(back, data) {
			t.Errorf("%s: round trip changed the data", c)
		}
	}
	if _, err := Compress(io.Discard, Bzip2); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compress(bzip2) err = %v, want ErrInvalid", err)
	}
}

func TestDecompressOtherFormats(t *testing.T) {
	bz, _ := hex.DecodeString("425a6839314159265359ab6ba1f1000002d9800010400010001264c01020003100d34d04001ea3ef4e51a2078bb9229c284855b5d0f880")
	var xzData bytes.Buffer
	xw, err := xz.NewWriter(&xzData)
	must(t, err)
	_, err = xw.Write([]byte("hello xz\n"))
	must(t, err)
	must(t, xw.Close())
	for _, tc := range []struct {
		in   []byte
		c    Compression
		want string
	}{
		{bz, Bzip2, "hello bzip2\n"},
		{xzData.Bytes(), Xz, "hello xz\n"},
		{nil, Uncompressed, ""},
		{[]byte{0x1f}, Uncompressed, "\x1f"},
	} {
		r, c, err := Decompress(bytes.NewReader(tc.in))
		must(t, err)
		got, err := io.ReadAll(r)
		must(t, err)
		if c != tc.c || string(got) != tc.want {
			t.Errorf("Decompress: %q %q, want %q %q", c, got, tc.c, tc.want)
		}
	}
	if _, _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0})); err == nil {
		t.Error("a corrupt gzip header must fail")
	}
}
