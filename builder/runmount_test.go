package builder

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runCommand parses one RUN line and expands its flags as dispatch does.
func runCommand(t *testing.T, line string) (*instructions.RunCommand, error) {
	t.Helper()
	df, err := parseDockerfile("Dockerfile", []byte("FROM scratch\n"+line+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := df.stages[0].Commands[0].(*instructions.RunCommand)
	return c, c.Expand(func(w string) (string, error) { return w, nil })
}

// mountsKey prepares a RUN's mounts in the real pass, for the plain mount
// types that need no context, and returns their cache key part.
func mountsKey(t *testing.T, b *build, line string) (string, error) {
	t.Helper()
	st := &stage{}
	st.img.Config.WorkingDir = "/work"
	c, err := runCommand(t, line)
	if err != nil {
		return "", err
	}
	m, err := b.prepareRunMounts(context.Background(), st, c)
	if err != nil {
		return "", err
	}
	data, _ := json.Marshal(m.key)
	return string(data), nil
}

func TestRunMountErrors(t *testing.T) {
	b := &build{dry: true}
	for _, tc := range []struct{ line, want string }{
		{"RUN --mount=type=cache true", "RUN --mount=type=cache: target is required"},
		{"RUN --mount=type=tmpfs,target=/ true", `RUN --mount=type=tmpfs,target=/: invalid mount target "/"`},
		{"RUN --mount=type=ssh true", "RUN --mount=type=ssh: not supported"},
		{"RUN --mount=type=cache,target=/c,source=/x true", "source=/x needs from="},
		{"RUN --mount=type=secret true", "one of source, target required"},
	} {
		_, err := mountsKey(t, b, tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.line, err, tc.want)
		}
	}
}

func TestRunMountKeys(t *testing.T) {
	b := &build{opts: Options{Secrets: map[string]SecretSource{"tok": {Env: "KILN_TEST_TOKEN"}}}}
	key := func(line string) string {
		t.Helper()
		k, err := mountsKey(t, b, line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return k
	}
	// A secret's key is its id and how it is mounted: the value is never read for it.
	t.Setenv("KILN_TEST_TOKEN", "first-value")
	k1 := key("RUN --mount=type=secret,id=tok true")
	t.Setenv("KILN_TEST_TOKEN", "second-value")
	if k2 := key("RUN --mount=type=secret,id=tok true"); k1 != k2 || strings.Contains(k1, "value") {
		t.Errorf("secret keys %s and %s", k1, k2)
	}
	if !strings.Contains(k1, `"Target":"/run/secrets/tok"`) {
		t.Errorf("secret default target: %s", k1)
	}
	if k := key("RUN --mount=type=secret,id=tok,env=TOK true"); strings.Contains(k, "/run/secrets") || !strings.Contains(k, `"Env":"TOK"`) {
		t.Errorf("env secret: %s", k)
	}
	// Cache mounts: id defaults to the target; relative targets are below WORKDIR.
	if k := key("RUN --mount=type=cache,target=rel true"); !strings.Contains(k, `"Target":"/work/rel"`) || !strings.Contains(k, `"ID":"/rel"`) {
		t.Errorf("cache key: %s", k)
	}
	distinct := []string{
		"RUN --mount=type=cache,target=/c true",
		"RUN --mount=type=cache,target=/c,id=other true",
		"RUN --mount=type=cache,target=/c,sharing=locked true",
		"RUN --mount=type=cache,target=/c,uid=1 true",
		"RUN --mount=type=cache,target=/c,ro true",
		"RUN --mount=type=tmpfs,target=/c true",
		"RUN --mount=type=tmpfs,target=/c,size=1m true",
	}
	seen := map[string]string{}
	for _, l := range distinct {
		k := key(l)
		if prev, ok := seen[k]; ok {
			t.Errorf("%q and %q have the same key %s", prev, l, k)
		}
		seen[k] = l
	}
}
