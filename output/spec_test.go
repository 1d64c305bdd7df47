package output

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
	}{
		{"-", Spec{Type: Tar, Dest: "-"}},
		{"out", Spec{Type: Local, Dest: "out"}},
		{"type=local,dest=out", Spec{Type: Local, Dest: "out"}},
		{"type=tar,dest=-", Spec{Type: Tar, Dest: "-"}},
		{"type=oci,dest=x,tar=false", Spec{Type: OCI, Dest: "x", Dir: true}},
		{"type=docker,dest=x.tar,name=a:1", Spec{Type: Docker, Dest: "x.tar", Names: []string{"a:1"}}},
		{"type=registry,name=r/a:1", Spec{Type: Registry, Push: true, Names: []string{"r/a:1"}}},
		{`type=image,"name=r/a:1,r/b:2",push=true,compression=zstd`, Spec{Type: Image, Push: true, Names: []string{"r/a:1", "r/b:2"}, Compression: layer.Zstd}},
		{"type=image,oci-mediatypes=false", Spec{Type: Image, DockerMediaTypes: true}},
	} {
		got, err := Parse(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"type=", "dest=x", "type=foo", "type=local", "type=local,dest=-", "type=oci,dest=-,tar=false",
		"type=local,dest=x,push=true", "type=tar,dest=x,name=a", "type=image,dest=x", "type=image,push=maybe", "type=oci,dest=x,compression=lz4",
		"type=image,oci-mediatypes=false,compression=zstd", `type=image,"name=a`, "type=image,noequals"} {
		if s, err := Parse(bad); !errors.Is(err, cache.ErrInvalid) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrInvalid", bad, s, err)
		}
	}
}

func TestParseAnnotations(t *testing.T) {
	a, err := ParseAnnotations([]string{"k=v", "manifest:org.example.m=1", "index-descriptor,manifest-descriptor:d=2", "org.example:colon=3", "e="})
	if err != nil {
		t.Fatal(err)
	}
	want := Annotations{
		Manifest:           map[string]string{"k": "v", "org.example.m": "1", "org.example:colon": "3", "e": ""},
		ManifestDescriptor: map[string]string{"d": "2"},
		IndexDescriptor:    map[string]string{"d": "2"},
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got %+v\nwant %+v", a, want)
	}
	for _, bad := range []string{"novalue", "=v", "bogus:k=v", "manifest[linux/amd64]:k=v", "manifest:=v"} {
		if _, err := ParseAnnotations([]string{bad}); !errors.Is(err, cache.ErrInvalid) {
			t.Errorf("ParseAnnotations(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzParse: no --output value makes Parse panic, and what it accepts has a
// type and, where one is needed, a destination.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-", "out", "type=oci,dest=x,tar=false", `type=image,"name=a,b",push=true`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		if s.Type == "" || (s.Type != Image && s.Type != Registry && s.Dest == "") {
			t.Errorf("Parse(%q) = %+v", in, s)
		}
	})
}

// TestCheckIndexAnnotations: which annotations and options an output takes
// depends on whether the build makes an image index (several platforms).
func TestCheckIndexAnnotations(t *testing.T) {
	ann := func(vs ...string) Annotations {
		a, err := ParseAnnotations(vs)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	image, oci := Spec{Type: Image}, Spec{Type: OCI, Dest: "x"}
	for _, c := range []struct {
		s     Spec
		a     Annotations
		index bool
		ok    bool
	}{
		{image, ann("index:k=v"), false, false},
		{image, ann("index:k=v"), true, true},
		{oci, ann("index:k=v"), true, true},
		{Spec{Type: Local, Dest: "d"}, ann("index:k=v"), true, false},
		{image, ann("manifest-descriptor:k=v"), false, false},
		{image, ann("manifest-descriptor:k=v"), true, true},
		{oci, ann("manifest-descriptor:k=v"), false, true},
		{image, ann("index-descriptor:k=v"), true, false},
		{oci, ann("index-descriptor:k=v"), true, true},
		{Spec{Type: Registry, Push: true, Names: []string{"r/x"}, DockerMediaTypes: true}, Annotations{}, true, false},
		{Spec{Type: Registry, Push: true, Names: []string{"r/x"}, DockerMediaTypes: true}, Annotations{}, false, true},
	} {
		err := Check(c.s, Options{Annotations: c.a, Index: c.index})
		if (err == nil) != c.ok {
			t.Errorf("Check(type=%s, %+v, index=%v) = %v, want ok=%v", c.s.Type, c.a, c.index, err, c.ok)
		}
	}
}
