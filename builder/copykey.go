package builder

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// A COPY of 100,000 files must not hold its key's JSON, its file list and
// that list's JSON in memory at once: both are hashed (and the list written)
// as streams from the walked files, byte for byte the JSON encoding/json
// gives for the same values, so keys and list digests stay what they were.

// fileListing is the file list of a COPY or ADD (context path → entry
// description) that the cache keeps to explain a later miss.
type fileListing interface {
	// writeJSON writes it as the JSON object json.Marshal makes of its map.
	writeJSON(w io.Writer) error
	// entries is it as a map.
	entries() map[string]string
}

// mapListing is a listing held as a map.
type mapListing map[string]string

func (l mapListing) writeJSON(w io.Writer) error {
	_, err := w.Write(mustJSON(map[string]string(l)))
	return err
}

func (l mapListing) entries() map[string]string { return l }

// listingDigest names a listing: the digest of its JSON.
func listingDigest(l fileListing) digest.Digest {
	h := sha256.New()
	bw := bufio.NewWriterSize(h, 64<<10)
	l.writeJSON(bw) // writes to a hash cannot fail
	bw.Flush()
	return digest.NewDigest(digest.SHA256, h)
}

// contextListing is the listing of walked context files, sorted by context
// path once, described as it is written.
type contextListing struct {
	ents []listEntry // sorted by path, paths unique
}

type listEntry struct {
	path string // in the context
	f    *contextFile
}

// newContextListing lists files by their path in contextDir. A file listed
// twice (by two sources) keeps its last description, as a map would.
func newContextListing(contextDir string, files []*contextFile) *contextListing {
	ents := make([]listEntry, len(files))
	prefix := strings.TrimSuffix(contextDir, "/") + "/"
	for i, f := range files {
		rel, ok := strings.CutPrefix(f.host, prefix)
		if !ok || rel != filepath.Clean(rel) {
			r, err := filepath.Rel(contextDir, f.host)
			if err != nil {
				r = f.host
			}
			rel = filepath.ToSlash(r)
		}
		ents[i] = listEntry{rel, f}
	}
	slices.SortStableFunc(ents, func(a, b listEntry) int { return strings.Compare(a.path, b.path) })
	// In place: no second list of 100,000 entries.
	n := 0
	for i, e := range ents {
		if i+1 < len(ents) && ents[i+1].path == e.path {
			continue // the later one wins
		}
		ents[n] = e
		n++
	}
	clear(ents[n:])
	return &contextListing{ents: ents[:n]}
}

func (l *contextListing) writeJSON(w io.Writer) error {
	buf := []byte{'{'}
	var desc []byte
	for i, e := range l.ents {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, e.path)
		buf = append(buf, ':')
		desc = e.f.appendDescribe(desc[:0])
		buf = appendJSONString(buf, desc)
		if len(buf) > 32<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, '}')
	_, err := w.Write(buf)
	return err
}

func (l *contextListing) entries() map[string]string {
	m := make(map[string]string, len(l.ents))
	for _, e := range l.ents {
		m[e.path] = e.f.describe()
	}
	return m
}

// appendJSONString appends s as encoding/json encodes a string: plain
// printable ASCII as is, anything else through encoding/json itself.
func appendJSONString[T string | []byte](buf []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(buf, mustJSON(string(s))...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// describe is a file as the cache key sees it: name, type, mode, size,
// content and link target — never its times or its owner in the context
// (COPY sets owners itself).
func (f *contextFile) describe() string { return string(f.appendDescribe(nil)) }

// appendDescribe appends describe's text: "rel kind perm size digest link".
func (f *contextFile) appendDescribe(b []byte) []byte {
	mode := f.fi().Mode()
	b = append(b, f.rel...)
	switch {
	case mode.IsDir():
		b = append(b, " d "...)
	case mode&fs.ModeSymlink != 0:
		b = append(b, " l "...)
	case !mode.IsRegular():
		b = append(b, " o"+mode.Type().String()+" "...)
	default:
		b = append(b, " f "...)
	}
	b = strconv.AppendUint(b, uint64(unixPerm(mode)), 8)
	b = append(b, ' ')
	b = strconv.AppendInt(b, f.fi().Size(), 10)
	b = append(b, ' ')
	b = f.appendDigest(b)
	b = append(b, ' ')
	return append(b, f.symlink()...)
}

// keySource is one source of a COPY in its cache key.
type keySource struct {
	Name, Base string
	Dir        bool
	Files      []*contextFile // as their descriptions
}

// writeKeySources writes sources as json.Marshal writes them with Files as
// a []string of descriptions.
func writeKeySources(w io.Writer, sources []keySource) {
	if sources == nil {
		io.WriteString(w, "null")
		return
	}
	var buf []byte
	var desc []byte
	for i, s := range sources {
		if i == 0 {
			buf = append(buf, '[')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"Name":`...)
		buf = appendJSONString(buf, s.Name)
		buf = append(buf, `,"Base":`...)
		buf = appendJSONString(buf, s.Base)
		buf = append(buf, `,"Dir":`...)
		buf = strconv.AppendBool(buf, s.Dir)
		buf = append(buf, `,"Files":`...)
		if s.Files == nil {
			buf = append(buf, "null"...)
		}
		for j, f := range s.Files {
			if j == 0 {
				buf = append(buf, '[')
			} else {
				buf = append(buf, ',')
			}
			desc = f.appendDescribe(desc[:0])
			buf = appendJSONString(buf, desc)
			if len(buf) > 32<<10 {
				w.Write(buf)
				buf = buf[:0]
			}
		}
		if s.Files != nil {
			buf = append(buf, ']')
		}
		buf = append(buf, '}')
	}
	buf = append(buf, ']')
	w.Write(buf)
}

// stepKeyStreaming is stepKey of inputs where one field, set to
// holeValue(hole), is written into the hash by fill instead of marshalled.
func stepKeyStreaming(parent digest.Digest, inputs any, hole string, fill func(io.Writer)) digest.Digest {
	data := mustJSON(struct {
		Parent digest.Digest
		Inputs any
	}{parent, inputs})
	quoted := []byte(`"` + hole + `"`)
	i := bytes.Index(data, quoted)
	if i < 0 || bytes.Count(data, quoted) != 1 {
		panic("cache key: the streamed field's place is not unique") // the hole is random: cannot happen
	}
	h := sha256.New()
	h.Write(data[:i])
	bw := bufio.NewWriterSize(h, 64<<10)
	fill(bw)
	bw.Flush()
	h.Write(data[i+len(quoted):])
	return digest.NewDigest(digest.SHA256, h)
}

// newHole is a marker no user input can match: it stands for a streamed
// field in a key's JSON.
func newHole() string {
	var b [16]byte
	rand.Read(b[:])
	return "kiln-stream-" + hex.EncodeToString(b[:])
}

// holeValue is what a streamed field is set to.
func holeValue(hole string) json.RawMessage { return json.RawMessage(`"` + hole + `"`) }
