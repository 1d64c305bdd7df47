package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// StreamDiff makes a directory's layer tar from what its maker wrote into
// it, while it writes it: a COPY hands it each entry's header, in the order
// and form WriteDiff will find them in (see DirHeader), and each regular
// file's bytes, which it has in hand anyway. The tar is hashed on another
// core (diffID and size), so the directory's files need not be read back.
//
// What the maker predicts is checked, not trusted: Verify walks the
// directory's metadata (DiffHeaders) and takes the streamed tar only when
// every header is the one streamed; the contents are the bytes the maker
// wrote, so the two tars are then the same byte for byte. Otherwise the
// caller diffs the directory as usual.
type StreamDiff struct {
	hw      *hashWriter
	tw      *tar.Writer
	headers *headerHasher
	err     error // the first error of the tar writer
	closed  bool
	taken   bool // Verify found the tar to be the directory's
}

// Taken reports whether Verify found the streamed tar to be the
// directory's layer tar.
func (s *StreamDiff) Taken() bool { return s.taken }

// NewStreamDiff starts a streamed layer tar. The caller must call Close
// (after Verify, or instead of it).
func NewStreamDiff() *StreamDiff {
	hw := newHashWriter(io.Discard)
	return &StreamDiff{hw: hw, tw: tar.NewWriter(hw), headers: newHeaderHasher()}
}

// WriteHeader adds the next entry, in WriteDiff's form.
func (s *StreamDiff) WriteHeader(hdr *tar.Header) error {
	if s.err != nil {
		return s.err
	}
	// Only the fields the differ sets and the hasher covers are written:
	// two tars whose headers hash alike are then the same bytes.
	c := tar.Header{Typeflag: hdr.Typeflag, Name: hdr.Name, Linkname: hdr.Linkname, Size: hdr.Size, Mode: hdr.Mode,
		Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Devmajor: hdr.Devmajor, Devminor: hdr.Devminor, PAXRecords: hdr.PAXRecords}
	s.headers.add(&c)
	if err := s.tw.WriteHeader(&c); err != nil {
		s.err = fmt.Errorf("streamed layer: header %s: %w", hdr.Name, err)
	}
	return s.err
}

// Write adds content to the current regular file.
func (s *StreamDiff) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.tw.Write(p)
	if err != nil {
		s.err = fmt.Errorf("streamed layer: %w", err)
	}
	return n, s.err
}

// Close ends the tar and stops its hasher. It may be called more than once.
func (s *StreamDiff) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if err := s.tw.Close(); err != nil && s.err == nil {
		s.err = fmt.Errorf("streamed layer: %w", err)
	}
	if err := s.hw.Close(); err != nil && s.err == nil {
		s.err = err
	}
	return s.err
}

// Verify ends the streamed tar and reports whether it is dir's layer tar
// (WriteDiff with no options): when ok, res is that tar's uncompressed
// Result, made without reading dir's files.
func (s *StreamDiff) Verify(ctx context.Context, dir string) (res Result, ok bool, err error) {
	if err := s.Close(); err != nil {
		return Result{}, false, nil // the caller diffs dir instead
	}
	got, err := DiffHeaders(ctx, dir)
	if err != nil {
		return Result{}, false, err
	}
	res, ok = s.VerifyHeaders(got)
	return res, ok, nil
}

// VerifyHeaders is Verify given DiffHeaders of the directory, read by the
// caller. That directory need not be the one the maker wrote into: the
// existing snapshot of a layer whose diffID is the stream's verifies when
// its entries have the streamed metadata (the contents are then the
// streamed bytes, which the diffID covers), so the maker need not write a
// copy of it.
func (s *StreamDiff) VerifyHeaders(headers []byte) (res Result, ok bool) {
	res, err := s.Result()
	if err != nil || !bytes.Equal(headers, s.headers.sum()) {
		return Result{}, false
	}
	s.taken = true
	return res, true
}

// Result ends the streamed tar and returns its uncompressed Result, not
// checked against any directory (Verify does that).
func (s *StreamDiff) Result() (Result, error) {
	if err := s.Close(); err != nil {
		return Result{}, err
	}
	d := s.hw.digest()
	return Result{DiffID: d, Size: s.hw.n, Digest: d, CompressedSize: s.hw.n, MediaType: Uncompressed.MediaType()}, nil
}

// DiffHeaders is a digest of the headers WriteDiff (with no options) writes
// for dir, in order, reading each entry's metadata but no file's content.
func DiffHeaders(ctx context.Context, dir string) ([]byte, error) {
	d := &differ{
		ctx:     ctx,
		buf:     make([]byte, 4096),
		dents:   make([]byte, 64<<10),
		xattrs:  newXattrReader(),
		headers: newHeaderHasher(),
	}
	if err := d.run(dir); err != nil {
		return nil, err
	}
	return d.headers.sum(), nil
}

// DirHeader is the header WriteDiff writes for the directory abs, named rel
// in the layer, as it is now (a StreamDiff's maker asks it for the
// directories it writes into but does not create).
func DirHeader(abs, rel string) (*tar.Header, error) {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: abs, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("%s: not a directory", abs)
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     rel + "/",
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Sec, 0),
	}
	d := &differ{xattrs: newXattrReader()}
	if _, err := d.readXattrs(-1, abs, hdr); err != nil {
		return nil, err
	}
	return hdr, nil
}

// EntryHeader is the header WriteDiff writes for an entry that was
// extracted from a tar with header hdr (Apply sets each entry's metadata
// from its header): no xattrs, seconds of mtime, and a hard link carrying
// its target's metadata (first, the header its target was extracted from).
func EntryHeader(hdr, first *tar.Header) *tar.Header {
	src := hdr
	if hdr.Typeflag == tar.TypeLink && first != nil {
		src = first
	}
	out := &tar.Header{
		Typeflag: src.Typeflag,
		Name:     hdr.Name,
		Mode:     src.Mode & 0o7777,
		Uid:      src.Uid,
		Gid:      src.Gid,
		ModTime:  time.Unix(src.ModTime.Unix(), 0),
	}
	switch src.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		out.Typeflag, out.Size = tar.TypeReg, src.Size
	case tar.TypeSymlink:
		out.Linkname = src.Linkname
	case tar.TypeChar, tar.TypeBlock:
		out.Devmajor, out.Devminor = src.Devmajor, src.Devminor
	}
	if hdr.Typeflag == tar.TypeLink {
		out.Typeflag, out.Linkname, out.Size, out.Devmajor, out.Devminor = tar.TypeLink, hdr.Linkname, 0, 0, 0
	}
	return out
}

// headerHasher hashes a sequence of tar headers: every field WriteDiff
// sets, each length-prefixed, so two sequences hash alike only when the
// tar writer writes them alike.
type headerHasher struct {
	h    hash.Hash
	b    []byte
	keys []string
}

func newHeaderHasher() *headerHasher { return &headerHasher{h: sha256.New()} }

func (x *headerHasher) add(hdr *tar.Header) {
	b := append(x.b[:0], hdr.Typeflag)
	b = appendString(b, hdr.Name)
	b = appendString(b, hdr.Linkname)
	for _, v := range []int64{hdr.Size, hdr.Mode, int64(hdr.Uid), int64(hdr.Gid), hdr.ModTime.Unix(),
		int64(hdr.ModTime.Nanosecond()), hdr.Devmajor, hdr.Devminor, int64(len(hdr.PAXRecords))} {
		b = binary.AppendVarint(b, v)
	}
	x.keys = x.keys[:0]
	for k := range hdr.PAXRecords {
		x.keys = append(x.keys, k)
	}
	slices.Sort(x.keys)
	for _, k := range x.keys {
		b = appendString(appendString(b, k), hdr.PAXRecords[k])
	}
	x.h.Write(b)
	x.b = b
}

func (x *headerHasher) sum() []byte { return x.h.Sum(nil) }

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
