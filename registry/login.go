package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/cache"
)

// ConfigDir is the directory of the docker config file kiln reads
// credentials from and login writes them to: $DOCKER_CONFIG, else ~/.docker.
func ConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find docker config: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// ServerAddress is the key docker files a registry's credentials under:
// "https://index.docker.io/v1/" for Docker Hub, host[:port] otherwise.
// server may be a host, host:port, or a URL.
func ServerAddress(server string, opts Options) (name.Registry, string, error) {
	host := server
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	switch host {
	case "", "docker.io", name.DefaultRegistry, "registry-1.docker.io":
		host = name.DefaultRegistry
	}
	reg, err := name.NewRegistry(host, append(opts.nameOptions(), name.StrictValidation)...)
	if err != nil {
		return name.Registry{}, "", fmt.Errorf("registry %q: %v: %w", server, err, cache.ErrInvalid)
	}
	if reg.RegistryStr() == name.DefaultRegistry {
		return reg, authn.DefaultAuthKey, nil
	}
	return reg, reg.RegistryStr(), nil
}

// Login checks the credentials against the registry (basic auth, or a bearer
// token obtained with them) and, when the registry accepts them, stores them
// in the docker config file (or the credential helper it names) as docker
// login does. Wrong credentials yield an error wrapping ErrUnauthorized.
func Login(ctx context.Context, server, username, password string, opts Options) (string, error) {
	reg, key, err := ServerAddress(server, opts)
	if err != nil {
		return "", err
	}
	if username == "" || password == "" {
		return "", fmt.Errorf("login to %s: username and password are required: %w", key, cache.ErrInvalid)
	}
	if err := checkLogin(ctx, reg, &authn.Basic{Username: username, Password: password}, opts); err != nil {
		return "", fmt.Errorf("login to %s: %w", key, err)
	}
	dir, err := ConfigDir()
	if err != nil {
		return "", err
	}
	cf, err := config.Load(dir)
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", key, err)
	}
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: username, Password: password, ServerAddress: key}); err != nil {
		return "", fmt.Errorf("login to %s: store credentials: %w", key, err)
	}
	return key, nil
}

// checkLogin authenticates against the registry's /v2/ endpoint.
func checkLogin(ctx context.Context, reg name.Registry, auth authn.Authenticator, opts Options) error {
	tr, err := transport.NewWithContext(ctx, reg, auth, opts.transport(), []string{})
	if err != nil {
		return describeErr(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("the registry refused the username or password (%s): %w", resp.Status, ErrUnauthorized)
	}
	return fmt.Errorf("registry answered %s", resp.Status)
}

// Logout removes the registry's credentials from the docker config file (or
// its credential helper). It reports whether there were any.
func Logout(server string, opts Options) (string, bool, error) {
	_, key, err := ServerAddress(server, opts)
	if err != nil {
		return "", false, err
	}
	dir, err := ConfigDir()
	if err != nil {
		return "", false, err
	}
	cf, err := config.Load(dir)
	if err != nil {
		return "", false, fmt.Errorf("logout from %s: %w", key, err)
	}
	store := cf.GetCredentialsStore(key)
	ac, err := store.Get(key)
	if err != nil {
		return "", false, fmt.Errorf("logout from %s: %w", key, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" {
		return key, false, nil
	}
	if err := store.Erase(key); err != nil {
		return "", false, fmt.Errorf("logout from %s: %w", key, err)
	}
	return key, true, nil
}
