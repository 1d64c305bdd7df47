package builder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KILN_TEST_SECRET_ENV", "from-env")
	t.Chdir(dir)
	for _, tc := range []struct {
		spec    string
		id      string
		want    SecretSource
		wantErr bool
	}{
		{spec: "id=a,src=" + file, id: "a", want: SecretSource{File: file}},
		{spec: "id=a,source=" + file, id: "a", want: SecretSource{File: file}},
		{spec: "type=file,id=a,src=" + file, id: "a", want: SecretSource{File: file}},
		{spec: "id=a,env=KILN_TEST_SECRET_ENV", id: "a", want: SecretSource{Env: "KILN_TEST_SECRET_ENV"}},
		{spec: "type=env,id=a,src=KILN_TEST_SECRET_ENV", id: "a", want: SecretSource{Env: "KILN_TEST_SECRET_ENV"}},
		// Neither src nor env: the variable named by the id, else the file.
		{spec: "id=KILN_TEST_SECRET_ENV", id: "KILN_TEST_SECRET_ENV", want: SecretSource{Env: "KILN_TEST_SECRET_ENV"}},
		{spec: "id=tok", id: "tok", want: SecretSource{File: "tok"}},
		{spec: "type=file,id=tok", id: "tok", want: SecretSource{File: "tok"}},
		{spec: "src=" + file, wantErr: true},                               // no id
		{spec: "id=a,src=" + file + ",env=X", wantErr: true},               // both
		{spec: "id=a,type=ssh", wantErr: true},                             // unknown type
		{spec: "id=a,bogus=1", wantErr: true},                              // unknown key
		{spec: "id=a,src", wantErr: true},                                  // not key=value
		{spec: "id=a,src=" + filepath.Join(dir, "missing"), wantErr: true}, // missing file
	} {
		id, src, err := ParseSecret(tc.spec)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseSecret(%q) = %q, %+v; want an error", tc.spec, id, src)
			}
			continue
		}
		if err != nil || id != tc.id || src != tc.want {
			t.Errorf("ParseSecret(%q) = %q, %+v, %v; want %q, %+v", tc.spec, id, src, err, tc.id, tc.want)
		}
	}
}

func TestSecretSourceRead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(file, []byte("file-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KILN_TEST_SECRET_ENV", "env-value")
	if v, err := (SecretSource{File: file}).read(); err != nil || string(v) != "file-value\n" {
		t.Errorf("file: %q, %v", v, err)
	}
	if v, err := (SecretSource{Env: "KILN_TEST_SECRET_ENV"}).read(); err != nil || string(v) != "env-value" {
		t.Errorf("env: %q, %v", v, err)
	}
	if _, err := (SecretSource{Env: "KILN_TEST_SECRET_UNSET"}).read(); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("unset variable: %v, want ErrSecretNotFound", err)
	}
}
