// Package progress carries a build's progress from the builder to a
// display. The builder reports its steps as vertices that start and end
// (done, cached or failed) and the output they print, as BuildKit's solve
// status does; a Display renders those updates as buildx does: a live view
// redrawn in place (tty), buildx's "#N" text (plain), one JSON object per
// update (rawjson), or nothing (quiet).
package progress

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Vertex is one step of a build. Its JSON is BuildKit's client.Vertex, so
// tools that read buildx's rawjson read kiln's.
type Vertex struct {
	Digest    digest.Digest   `json:"digest,omitempty"`
	Inputs    []digest.Digest `json:"inputs,omitempty"`
	Name      string          `json:"name,omitempty"`
	Started   *time.Time      `json:"started,omitempty"`
	Completed *time.Time      `json:"completed,omitempty"`
	Cached    bool            `json:"cached,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// VertexStatus is a named piece of a vertex's work ("writing image sha256:…").
type VertexStatus struct {
	ID        string        `json:"id"`
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Name      string        `json:"name,omitempty"`
	Total     int64         `json:"total,omitempty"`
	Current   int64         `json:"current"`
	Timestamp time.Time     `json:"timestamp"`
	Started   *time.Time    `json:"started,omitempty"`
	Completed *time.Time    `json:"completed,omitempty"`
}

// VertexLog is output of a vertex: Stream 1 is stdout, 2 stderr. Data is
// as written, not split into lines.
type VertexLog struct {
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Stream    int           `json:"stream,omitempty"`
	Data      []byte        `json:"data"`
	Timestamp time.Time     `json:"timestamp"`
}

// VertexWarning is a warning of the build (a lint check), with where it points.
type VertexWarning struct {
	Vertex digest.Digest `json:"vertex,omitempty"`
	Level  int           `json:"level,omitempty"`
	Short  []byte        `json:"short,omitempty"`
	Detail [][]byte      `json:"detail,omitempty"`
	URL    string        `json:"url,omitempty"`
}

// SolveStatus is one update: BuildKit's client.SolveStatus.
type SolveStatus struct {
	Vertexes []*Vertex        `json:"vertexes,omitempty"`
	Statuses []*VertexStatus  `json:"statuses,omitempty"`
	Logs     []*VertexLog     `json:"logs,omitempty"`
	Warnings []*VertexWarning `json:"warnings,omitempty"`
}

// Writer receives the updates of a build. Parallel stages call Write side
// by side: implementations serialize. A Writer must not keep s after Write
// returns unless it copies it; the caller does not change it afterwards.
type Writer interface {
	Write(s *SolveStatus)
}

// Discard is a Writer that drops every update.
var Discard Writer = discard{}

type discard struct{}

func (discard) Write(*SolveStatus) {}
