package registry

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/cache"
)

// defaultJobs is how many blobs move at once.
const defaultJobs = 3

var (
	// ErrUnauthorized: the registry refused the credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupported: the registry holds something kiln cannot use (a schema 1
	// manifest, an artifact that is not an image, a platform it lacks).
	ErrUnsupported = errors.New("unsupported")
)

// Options are the settings shared by every registry operation.
type Options struct {
	// Insecure allows plain HTTP and skips TLS verification for every
	// registry (--tls-verify=false). Registries on localhost and 127.0.0.1 are
	// spoken to over plain HTTP regardless.
	Insecure bool
	// Keychain finds credentials; nil means the docker config file and its
	// credential helpers (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Platform picks the image of a multi-platform index, as os/arch[/variant];
	// empty means linux on this machine's architecture.
	Platform string
	// AllPlatforms pulls every image of a multi-platform index (pull
	// --all-platforms); Platform then only picks Pulled.ID.
	AllPlatforms bool
	// Jobs is how many blobs are transferred at once (default 3).
	Jobs int
	// Progress receives a line per layer as it starts and ends; nil is silent.
	Progress io.Writer
	// Terminal redraws a progress bar per layer on Progress instead of
	// printing lines.
	Terminal bool
	// InsecureRegistries are registries (host or host:port) that may be
	// spoken to over plain HTTP or TLS without verification, as docker's
	// insecure-registries.
	InsecureRegistries []string
	// Transport is the HTTP transport under authentication and retries; nil
	// means remote.DefaultTransport (TLS verification off when Insecure).
	Transport http.RoundTripper
}

func (o Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return defaultJobs
}

func (o Options) keychain() authn.Keychain {
	if o.Keychain != nil {
		return o.Keychain
	}
	return authn.DefaultKeychain
}

func (o Options) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	insecure := func() http.RoundTripper {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --tls-verify=false or insecure-registries asked for it
		return t
	}
	if o.Insecure {
		return insecure()
	}
	if len(o.InsecureRegistries) > 0 {
		return perHost{insecure: insecure(), hosts: o.InsecureRegistries}
	}
	return remote.DefaultTransport
}

// perHost skips TLS verification only for the insecure registries.
type perHost struct {
	insecure http.RoundTripper
	hosts    []string
}

func (p perHost) RoundTrip(req *http.Request) (*http.Response, error) {
	if p.isInsecure(req.URL.Host) {
		return p.insecure.RoundTrip(req)
	}
	return remote.DefaultTransport.RoundTrip(req)
}

func (p perHost) isInsecure(host string) bool {
	for _, h := range p.hosts {
		if h == host || (!strings.Contains(h, ":") && strings.Split(host, ":")[0] == h) {
			return true
		}
	}
	return false
}

func (o Options) platform() (v1.Platform, error) {
	if o.Platform == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	p, err := v1.ParsePlatform(o.Platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]: %w", o.Platform, cache.ErrInvalid)
	}
	return *p, nil
}

func (o Options) nameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// remoteOptions are the go-containerregistry options for one operation.
func (o Options) remoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithAuthFromKeychain(o.keychain()),
		remote.WithTransport(o.transport()),
		remote.WithJobs(o.jobs()),
		remote.WithUserAgent("kiln"),
	}
}

// ParseReference resolves an image name as docker does ("busybox" →
// docker.io/library/busybox:latest) and returns it in the store's form and
// as a registry reference.
func ParseReference(image string, opts Options) (string, name.Reference, error) {
	n, err := cache.NormalizeName(image)
	if err != nil {
		return "", nil, err
	}
	nopts := append(opts.nameOptions(), name.StrictValidation)
	ref, err := name.ParseReference(n, nopts...)
	if err != nil {
		return "", nil, fmt.Errorf("reference %q: %v: %w", image, err, cache.ErrInvalid)
	}
	host := ref.Context().RegistryStr()
	if (isLoopback(host) || (perHost{hosts: opts.InsecureRegistries}).isInsecure(host)) && ref.Context().Scheme() != "http" {
		// go-containerregistry only knows loopback hosts with a port.
		ref, err = name.ParseReference(n, append(nopts, name.Insecure)...)
	}
	return n, ref, err
}

// isLoopback reports whether a registry host[:port] is this machine.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
