package builder

import (
	"errors"
	"testing"
)

func TestParseErrorsNameFileAndLine(t *testing.T) {
	cases := []struct{ src, want string }{
		{"FROM scratch\nXYZZY bar\n", "Dockerfile:2: unknown instruction: XYZZY"},
		{"FROM scratch\nRUNN true\n", "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"},
		{"FROM scratch\nENV\n", "Dockerfile:2: ENV requires at least one argument"},
		{"FROM scratch\n\nCOPY onlyone\n", "Dockerfile:3: COPY requires at least two arguments, but only one was provided. Destination could not be determined"},
		{"# just a comment\n", "Dockerfile:1: file with no instructions"},
		{"RUN true\n", "Dockerfile:1: no build stage in current context"},
	}
	for _, c := range cases {
		_, err := parseDockerfile("Dockerfile", []byte(c.src))
		if err == nil {
			t.Errorf("%q: no error, want %q", c.src, c.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: error %T is not *Error", c.src, err)
		}
		if err.Error() != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.src, err.Error(), c.want)
		}
	}
}

func TestParsePorts(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"80", []string{"80/tcp"}, false},
		{"53/udp", []string{"53/udp"}, false},
		{"53/UDP", []string{"53/udp"}, false},
		{"9000-9002", []string{"9000/tcp", "9001/tcp", "9002/tcp"}, false},
		{"80/xyz", nil, true},
		{"abc", nil, true},
		{"70000", nil, true},
		{"9-8", nil, true},
	}
	for _, c := range cases {
		got, err := parsePorts(c.in)
		if (err != nil) != c.err {
			t.Errorf("%s: err = %v", c.in, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %v, want %v", c.in, got, c.want)
			}
		}
	}
}

func TestResolveWorkdir(t *testing.T) {
	cases := []struct{ cur, p, want string }{
		{"", "app", "/app"},
		{"/a", "b", "/a/b"},
		{"/a", "/c/", "/c"},
		{"/a", "../x", "/x"},
		{"/a/b", ".", "/a/b"},
	}
	for _, c := range cases {
		if got := resolveWorkdir(c.cur, c.p); got != c.want {
			t.Errorf("resolveWorkdir(%q, %q) = %q, want %q", c.cur, c.p, got, c.want)
		}
	}
}

func TestQuoteArgs(t *testing.T) {
	if got := quoteArgs([]string{"/bin/sh", "-c", `echo "hi"`}); got != `["/bin/sh" "-c" "echo \"hi\""]` {
		t.Errorf("got %s", got)
	}
}
