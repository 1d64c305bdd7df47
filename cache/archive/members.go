package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

// maxJSONMember bounds what is read into memory of a JSON member (index,
// manifest, config, manifest.json).
const maxJSONMember = 16 << 20

// maxLinkHops bounds how many symlinks or hard links a member lookup follows.
const maxLinkHops = 16

// member is a file of the archive tar.
type member struct {
	name      string
	off, size int64 // where its content lies in members.ra
	// link, for a symlink or hard link, is the member it stands for.
	link string
}

// members gives random access to the files of an archive tar. Member names
// are only ever used as keys: nothing is written to the filesystem under
// them, so hostile names are harmless.
type members struct {
	ra     io.ReaderAt
	byName map[string]*member
}

// openArchive indexes the archive read from r. A regular, uncompressed file is
// read in place (by offset, without copying); anything else (a pipe, or a tar
// compressed as a whole) is read once as a stream, its members' content spooled
// to a file in the store's tmp directory. done releases what openArchive holds.
func openArchive(ctx context.Context, s *cache.Store, r io.Reader) (ms *members, done func(), err error) {
	if f, ok := r.(*os.File); ok {
		if ms, ok, err := indexInPlace(f); ok || err != nil {
			return ms, func() {}, err
		}
	}
	dr, c, err := layer.Decompress(ctxReader{ctx, r})
	if err != nil {
		return nil, nil, fmt.Errorf("read archive: %w", err)
	}
	defer dr.Close()
	dir, err := s.TempDir("load.")
	if err != nil {
		return nil, nil, fmt.Errorf("read archive: %w", err)
	}
	done = func() { os.RemoveAll(dir) }
	spool, err := os.Create(filepath.Join(dir, "spool"))
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("read archive: %w", err)
	}
	done = func() { spool.Close(); os.RemoveAll(dir) }
	tr := tar.NewReader(dr)
	var end int64
	byName, err := scanTar(tr, func() (int64, error) {
		off := end
		n, err := io.Copy(spool, tr)
		end += n
		return off, err
	})
	if err != nil {
		done()
		if c != layer.Uncompressed {
			err = fmt.Errorf("%s-compressed archive: %w", c, err)
		}
		return nil, nil, err
	}
	return &members{ra: spool, byName: byName}, done, nil
}

// indexInPlace indexes f from its current offset when it is a regular file
// holding an uncompressed tar. ok is false when f cannot be read that way.
func indexInPlace(f *os.File) (ms *members, ok bool, err error) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	base, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false, nil
	}
	dr, c, err := layer.Decompress(io.NewSectionReader(f, base, fi.Size()-base))
	if err != nil {
		return nil, false, nil // let the streaming path report it
	}
	dr.Close()
	if c != layer.Uncompressed {
		return nil, false, nil
	}
	sr := io.NewSectionReader(f, base, fi.Size()-base)
	tr := tar.NewReader(sr)
	// tar.Reader reads exactly the header blocks and skips content by
	// seeking, so after Next the section's offset is where the content starts.
	byName, err := scanTar(tr, func() (int64, error) { return sr.Seek(0, io.SeekCurrent) })
	if err != nil {
		return nil, true, err
	}
	return &members{ra: sr, byName: byName}, true, nil
}

// scanTar reads every header of tr. place is called for each regular file,
// positioned at its content, and returns where that content can be read later.
func scanTar(tr *tar.Reader, place func() (int64, error)) (map[string]*member, error) {
	byName := map[string]*member{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if len(byName) == 0 {
				return nil, fmt.Errorf("read archive: no files in it: %w", cache.ErrInvalid)
			}
			return byName, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		name, ok := cleanName(hdr.Name)
		if !ok {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			off, err := place()
			if err != nil {
				return nil, fmt.Errorf("read archive member %s: %w", name, err)
			}
			byName[name] = &member{name: name, off: off, size: hdr.Size}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if t, ok := cleanName(target); ok {
				byName[name] = &member{name: name, link: t}
			}
		case tar.TypeLink:
			if t, ok := cleanName(hdr.Linkname); ok {
				byName[name] = &member{name: name, link: t}
			}
		}
	}
}

// cleanName turns a member name or link target into its canonical
// archive-relative form, with ".." clamped at the archive's root.
func cleanName(name string) (string, bool) {
	p := path.Clean("/" + name)
	if p == "/" {
		return "", false
	}
	return p[1:], true
}

// lookup finds the file named name, following links within the archive.
func (ms *members) lookup(name string) (*member, error) {
	first, _ := cleanName(name)
	cur := first
	for range maxLinkHops {
		m, ok := ms.byName[cur]
		if !ok {
			if cur == first {
				return nil, fmt.Errorf("archive member %s: not in the archive: %w", name, cache.ErrInvalid)
			}
			return nil, fmt.Errorf("archive member %s: links to %s, which is not in the archive: %w", name, cur, cache.ErrInvalid)
		}
		if m.link == "" {
			return m, nil
		}
		cur = m.link
	}
	return nil, fmt.Errorf("archive member %s: too many levels of links: %w", name, cache.ErrInvalid)
}

// has reports whether name is a file of the archive.
func (ms *members) has(name string) bool {
	_, err := ms.lookup(name)
	return err == nil
}

// open returns a reader of m's content.
func (ms *members) open(m *member) *io.SectionReader {
	return io.NewSectionReader(ms.ra, m.off, m.size)
}

// readSmall reads a JSON-sized member whole.
func (ms *members) readSmall(name string) ([]byte, error) {
	m, err := ms.lookup(name)
	if err != nil {
		return nil, err
	}
	if m.size > maxJSONMember {
		return nil, fmt.Errorf("archive member %s: %d bytes, more than the %d allowed for metadata: %w", name, m.size, maxJSONMember, cache.ErrInvalid)
	}
	data := make([]byte, m.size)
	if _, err := io.ReadFull(ms.open(m), data); err != nil {
		return nil, fmt.Errorf("read archive member %s: %w", name, err)
	}
	return data, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
