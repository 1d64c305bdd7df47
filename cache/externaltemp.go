package cache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// External temp files: a command that writes a temp file outside the store
// (kiln save writes its archive beside the target and renames it) notes its
// path in tmp/ for as long as it works. A note outlives its process only
// when that process was killed; the note then leads GC and Check to the
// temp file it left.

const externalNotePrefix = "external."

type externalNote struct {
	Path string `json:"path"`
}

// NoteExternalTemp records that this process is writing the temp file path
// (absolute or not) outside the store; call it before the file is created,
// so that no moment exists where the file is there and the note is not. forget removes the note; call it once
// the file is renamed or removed.
func (s *Store) NoteExternalTemp(path string) (forget func(), err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(externalNote{Path: abs})
	if err != nil {
		return nil, err
	}
	// Written under another name and renamed: a note is whole or absent,
	// whenever this process is killed.
	f, err := s.tempFile("note-*")
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	note := filepath.Join(filepath.Dir(f.Name()), externalNotePrefix+strings.TrimPrefix(filepath.Base(f.Name()), "note-"))
	if err == nil {
		err = os.Rename(f.Name(), note)
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return func() { os.Remove(note) }, nil
}

// externalTemp returns the path a note in tmp/ names, if name is a whole note.
func (s *Store) externalTemp(name string) (string, bool) {
	if !strings.HasPrefix(name, externalNotePrefix) {
		return "", false
	}
	data, err := os.ReadFile(s.path("tmp", name))
	if err != nil {
		return "", false
	}
	var n externalNote
	if json.Unmarshal(data, &n) != nil || !filepath.IsAbs(n.Path) {
		return "", false // cut short by a kill: only the note is debris
	}
	return n.Path, true
}
