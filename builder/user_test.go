package builder

import (
	"io"
	"io/fs"
	"strings"
	"testing"
)

func TestResolveUserGroup(t *testing.T) {
	files := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1001::/home/app:/bin/sh\n",
		"/etc/group":  "root:x:0:\nstaff:x:50:app\napp:x:1001:\n",
	}
	open := func(p string) (io.ReadCloser, error) {
		if s, ok := files[p]; ok {
			return io.NopCloser(strings.NewReader(s)), nil
		}
		return nil, fs.ErrNotExist
	}
	cases := []struct {
		spec     string
		uid, gid int
		err      string
	}{
		{"root", 0, 0, ""},
		{"app", 1000, 1001, ""},
		{"1000", 1000, 1000, ""}, // a bare uid is its own gid, as BuildKit's --chown
		{"4242", 4242, 4242, ""}, // numeric without an entry
		{"app:staff", 1000, 50, ""},
		{"app:77", 1000, 77, ""},
		{"5:6", 5, 6, ""},
		{"nobody", 0, 0, "unable to find user nobody: no matching entries in passwd file"},
		{"app:nogroup", 0, 0, "unable to find group nogroup: no matching entries in group file"},
	}
	for _, c := range cases {
		got, err := resolveUserGroup(c.spec, open)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: err = %v, want %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil || got.UID != c.uid || got.GID != c.gid {
			t.Errorf("%s: got %+v, %v; want %d:%d", c.spec, got, err, c.uid, c.gid)
		}
	}
}
