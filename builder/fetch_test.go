package builder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestURLFileName(t *testing.T) {
	for url, want := range map[string]string{
		"http://h/dir/file.tar.gz":    "file.tar.gz",
		"https://h/dir/file?x=1#frag": "file",
		"http://h/dir/":               "dir",
		"http://h/":                   "__unnamed__",
		"http://h":                    "__unnamed__",
	} {
		if got := urlFileName(url); got != want {
			t.Errorf("urlFileName(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestFetch(t *testing.T) {
	body := "downloaded content\n"
	modTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file.txt":
			w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
			w.Write([]byte(body))
		case "/nodate":
			w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	want := digest.FromString(body)
	ctx := context.Background()

	d, err := fetch(ctx, srv.Client(), srv.URL+"/file.txt", t.TempDir(), want)
	if err != nil {
		t.Fatal(err)
	}
	if d.name != "file.txt" || d.digest != want {
		t.Errorf("download %+v", d)
	}
	fi, err := os.Stat(d.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(modTime) {
		t.Errorf("file mode %v, mtime %v; want 0600, %v", fi.Mode(), fi.ModTime(), modTime)
	}
	if data, _ := os.ReadFile(d.path); string(data) != body {
		t.Errorf("content %q", data)
	}

	// No Last-Modified: the epoch, as BuildKit.
	d, err = fetch(ctx, srv.Client(), srv.URL+"/nodate", t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(d.path); fi.ModTime().Unix() != 0 {
		t.Errorf("mtime without Last-Modified: %v", fi.ModTime())
	}

	bad := digest.FromString("something else")
	_, err = fetch(ctx, srv.Client(), srv.URL+"/file.txt", t.TempDir(), bad)
	if err == nil || !strings.Contains(err.Error(), "digest mismatch for "+srv.URL+"/file.txt") || !strings.Contains(err.Error(), string(bad)) {
		t.Errorf("bad checksum: %v", err)
	}
	_, err = fetch(ctx, srv.Client(), srv.URL+"/missing", t.TempDir(), "")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("404: %v", err)
	}
}
