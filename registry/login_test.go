package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest/storetest"
	"github.com/kiln-build/kiln/registry/registrytest"
)

// TestLogin: wrong credentials are refused and not stored; right ones are
// stored as docker stores them, used by push and pull, and removed by logout.
func TestLogin(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{Auth: true})
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	cfgFile := filepath.Join(cfgDir, "config.json")
	s := storetest.OpenStore(t)
	makeImage(t, s, "app", filesA)
	ref := reg.Ref("private/app:v1")

	if _, err := Push(ctx, s, "app", ref, FormatKeep, Options{}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("push without credentials: %v, want ErrUnauthorized", err)
	}
	_, err := Login(ctx, reg.Host, reg.User, "wrong", Options{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v, want ErrUnauthorized", err)
	}
	t.Logf("wrong password: %v", err)
	if _, err := os.Stat(cfgFile); err == nil {
		t.Errorf("wrong credentials were stored")
	}

	key, err := Login(ctx, "http://"+reg.Host+"/", reg.User, reg.Password, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if key != reg.Host {
		t.Errorf("stored under %q, want %q", key, reg.Host)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	readJSON(t, cfgFile, &cf)
	if got := cf.Auths[reg.Host].Auth; got != base64.StdEncoding.EncodeToString([]byte(reg.User+":"+reg.Password)) {
		t.Errorf("config.json auth for %s: %q", reg.Host, got)
	}
	if _, err := Push(ctx, s, "app", ref, FormatKeep, Options{}); err != nil {
		t.Fatalf("push with stored credentials: %v", err)
	}
	if _, err := Pull(ctx, storetest.OpenStore(t), ref, Options{}); err != nil {
		t.Fatalf("pull with stored credentials: %v", err)
	}

	if _, had, err := Logout(reg.Host, Options{}); err != nil || !had {
		t.Fatalf("logout: %v, %v", had, err)
	}
	var after struct{ Auths map[string]json.RawMessage }
	readJSON(t, cfgFile, &after)
	if _, ok := after.Auths[reg.Host]; ok {
		t.Errorf("logout left the credentials: %v", after)
	}
	if _, had, err := Logout(reg.Host, Options{}); err != nil || had {
		t.Errorf("second logout: %v, %v", had, err)
	}
	if _, err := Pull(ctx, storetest.OpenStore(t), ref, Options{}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("pull after logout: %v, want ErrUnauthorized", err)
	}
}

func TestServerAddress(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "https://index.docker.io/v1/",
		"docker.io":                  "https://index.docker.io/v1/",
		"https://index.docker.io/v1": "https://index.docker.io/v1/",
		"localhost:5000":             "localhost:5000",
		"https://quay.io/v2/":        "quay.io",
	} {
		if _, got, err := ServerAddress(in, Options{}); err != nil || got != want {
			t.Errorf("%q: %q, %v, want %q", in, got, err, want)
		}
	}
}

func TestInsecureRegistriesByName(t *testing.T) {
	opts := Options{InsecureRegistries: []string{"myreg.example:5000", "plain.example"}}
	for _, c := range []struct {
		image, scheme string
	}{
		{"myreg.example:5000/app:1", "http"},
		{"plain.example/app:1", "http"},
		{"plain.example:443/app:1", "http"},
		{"other.example/app:1", "https"},
		{"myreg.example:5001/app:1", "https"},
	} {
		_, ref, err := ParseReference(c.image, opts)
		if err != nil {
			t.Fatal(err)
		}
		// name.Insecure lets go-containerregistry fall back to plain HTTP.
		if got := ref.Context().Scheme(); got != c.scheme {
			t.Errorf("%s: scheme %s, want %s", c.image, got, c.scheme)
		}
	}
}
