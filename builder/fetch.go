package builder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
)

// download is a file ADD fetched from a URL.
type download struct {
	url  string
	path string // the file on the host
	// name is what the file is called in the image when the destination is
	// a directory: the URL path's last element, as BuildKit names it.
	name    string
	digest  digest.Digest
	modTime time.Time // Last-Modified, else the epoch, as BuildKit sets it
}

// urlFileName is the name BuildKit gives a file downloaded from rawURL.
func urlFileName(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" {
			return base
		}
	}
	return "__unnamed__"
}

// fetch downloads rawURL into the directory dir as a file of mode 0600 with
// the Last-Modified time, as BuildKit does, hashing it on the way. When
// checksum is set, a different content is an error naming the URL.
func fetch(ctx context.Context, client *http.Client, rawURL, dir string, checksum digest.Digest) (*download, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, fmt.Errorf("fetch %s: invalid response status %s", rawURL, resp.Status)
	}
	d := &download{url: rawURL, name: urlFileName(rawURL), path: filepath.Join(dir, "download"), modTime: time.Unix(0, 0)}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	d.digest = digest.NewDigest(digest.SHA256, h)
	if checksum != "" && d.digest != checksum {
		return nil, fmt.Errorf("digest mismatch for %s: %s (expected: %s)", rawURL, d.digest, checksum)
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			d.modTime = t
		}
	}
	if err := os.Chtimes(d.path, d.modTime, d.modTime); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	return d, nil
}
