// Package registrytest runs real registry servers (Debian's docker-registry,
// the distribution project's registry) on 127.0.0.1 for tests.
package registrytest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

// Server is a registry listening on 127.0.0.1 (or Options.Addr), storing
// into a temporary directory, killed when the test ends.
type Server struct {
	// Host is 127.0.0.1:PORT (ADDR:PORT with Options.Addr).
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
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1, which
	// clients cannot verify.
	TLS bool
	// Addr is the address to listen on instead of 127.0.0.1: one a
	// container reaches, such as its network's gateway.
	Addr string
}

// Start starts a registry and waits until it answers on /v2/.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("needs %s (Debian docker-registry; make deps installs it)", Binary)
	}
	dir := t.TempDir()
	s := &Server{Dir: filepath.Join(dir, "storage"), access: &lockedBuffer{}, errs: &lockedBuffer{}}
	addr := "127.0.0.1"
	if o.Addr != "" {
		addr = o.Addr
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
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
	scheme := "http"
	if o.TLS {
		scheme = "https"
		cert, key := selfSigned(t, dir)
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
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
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // our own test certificate
	for {
		resp, err := client.Get(scheme + "://" + s.Host + "/v2/")
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

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t testing.TB, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, kp
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
