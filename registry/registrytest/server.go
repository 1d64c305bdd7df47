// Package registrytest runs real registry servers (Debian's docker-registry,
// the distribution project's registry) on 127.0.0.1 for tests.
package registrytest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry server the tests run.
const Binary = "/usr/bin/docker-registry"

// Server is a registry listening on 127.0.0.1, storing into a temporary
// directory, killed when the test ends.
type Server struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// Dir is the registry's storage root.
	Dir string
	// User and Password are the only credentials an auth server accepts.
	User, Password string

	access, errs *lockedBuffer
}

// Options choose how the server runs.
type Options struct {
	// Auth requires basic authentication (htpasswd) with User and Password.
	Auth bool
}

// Start starts a registry and waits until it answers on /v2/.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("needs %s (Debian docker-registry; make deps installs it)", Binary)
	}
	dir := t.TempDir()
	s := &Server{Dir: filepath.Join(dir, "storage"), access: &lockedBuffer{}, errs: &lockedBuffer{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Host = l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, s.Dir, s.Host)
	if o.Auth {
		s.User, s.Password = "kiln", "s3cret-pass"
		hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(s.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: kiln-test\n    path: %s\n", pw)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary, "serve", cfgPath)
	// The access log (one line per request) goes to stdout, the rest to stderr.
	cmd.Stdout, cmd.Stderr = s.access, s.errs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("registry exited:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s: %v\n%s", s.Host, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Ref is HOST/repo.
func (s *Server) Ref(repo string) string { return s.Host + "/" + repo }

// Log is everything the server logged.
func (s *Server) Log() string { return s.access.String() + s.errs.String() }

// AccessLog is the server's access log, one line per request.
func (s *Server) AccessLog() string { return s.access.String() }

// Mark returns a position in the log, for Requests to count from.
func (s *Server) Mark() int { return s.access.Len() }

// Requests counts the requests logged since mark whose method matches and
// whose path contains pathPart, from the access log's lines
// (`... "PUT /v2/repo/blobs/uploads/... HTTP/1.1" 201 ...`).
func (s *Server) Requests(mark int, method, pathPart string) int {
	log := s.access.String()[mark:]
	n := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		_, req, ok := strings.Cut(line, `] "`)
		if !ok {
			continue
		}
		f := strings.Fields(req)
		if len(f) >= 2 && f[0] == method && strings.Contains(f[1], pathPart) {
			n++
		}
	}
	return n
}

// BlobPath is where the registry stores a blob's content.
func (s *Server) BlobPath(d digest.Digest) string {
	return filepath.Join(s.Dir, "docker/registry/v2/blobs", string(d.Algorithm()), d.Encoded()[:2], d.Encoded(), "data")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}
