package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseVolumeFlag(t *testing.T) {
	for in, want := range map[string]MountSpec{
		"/data":             {Type: "volume", Target: "/data"},
		"name:/data":        {Type: "volume", Source: "name", Target: "/data"},
		"name:/data:ro":     {Type: "volume", Source: "name", Target: "/data", ReadOnly: true},
		"name:/data:nocopy": {Type: "volume", Source: "name", Target: "/data", NoCopy: true},
		"/host:/data":       {Type: "bind", Source: "/host", Target: "/data"},
		"./rel:/data:rw,z":  {Type: "bind", Source: "./rel", Target: "/data"},
		"/host:/data:ro,Z":  {Type: "bind", Source: "/host", Target: "/data", ReadOnly: true},
	} {
		if got, err := ParseVolumeFlag(in); err != nil || got != want {
			t.Errorf("ParseVolumeFlag(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a:b:c:d", "name:relative", "name:/", ":/x", "name:/x:bogus"} {
		if _, err := ParseVolumeFlag(bad); !errors.Is(err, ErrInvalidMount) {
			t.Errorf("ParseVolumeFlag(%q): %v", bad, err)
		}
	}
}

func TestParseMountFlag(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]MountSpec{
		"type=bind,source=" + dir + ",target=/x":       {Type: "bind", Source: dir, Target: "/x"},
		"type=bind,src=" + dir + ",dst=/x,readonly":    {Type: "bind", Source: dir, Target: "/x", ReadOnly: true},
		"type=volume,source=v,target=/x,volume-nocopy": {Type: "volume", Source: "v", Target: "/x", NoCopy: true},
		"source=v,destination=/x,ro=true":              {Type: "volume", Source: "v", Target: "/x", ReadOnly: true},
		"type=tmpfs,target=/t,tmpfs-size=1m":           {Type: "tmpfs", Target: "/t"},
	} {
		if got, err := ParseMountFlag(in); err != nil || got != want {
			t.Errorf("ParseMountFlag(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{
		"type=bind,target=/x", "type=bind,source=/no/such/dir,target=/x", "type=nfs,target=/x",
		"type=tmpfs,source=x,target=/t", "type=volume,target=rel", "bogus=1,target=/x",
	} {
		if _, err := ParseMountFlag(bad); !errors.Is(err, ErrInvalidMount) {
			t.Errorf("ParseMountFlag(%q): %v", bad, err)
		}
	}
}

func TestResolveMounts(t *testing.T) {
	s := NewStore(t.TempDir())
	host := filepath.Join(t.TempDir(), "made")
	mps, err := s.ResolveMounts([]MountSpec{
		{Type: "volume", Source: "named", Target: "/n/"},
		{Type: "bind", Source: host, Target: "/b", ReadOnly: true},
		{Type: "tmpfs", Target: "/t"},
		{Type: "volume", Target: "/anon"},
	}, map[string]struct{}{"/img": {}, "/n": {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) != 5 {
		t.Fatalf("mount points: %+v", mps)
	}
	if m := mps[0]; m.Name != "named" || m.Destination != "/n" || !m.RW || m.Source != filepath.Join(s.root, "volumes", "named", "_data") {
		t.Errorf("named volume: %+v", m)
	}
	if m := mps[1]; m.Type != "bind" || m.Source != host || m.RW || m.Mode != "ro" {
		t.Errorf("bind: %+v", m)
	}
	if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
		t.Errorf("a missing -v source directory is made, as docker: %v", err)
	}
	// The anonymous volumes (-v /anon, the image's /img; /n is covered).
	for _, m := range []MountPoint{mps[3], mps[4]} {
		v, err := s.Volume(m.Name)
		if err != nil || !v.Anonymous || len(m.Name) != 64 {
			t.Errorf("anonymous volume %+v: %+v, %v", m, v, err)
		}
	}
	if mps[4].Destination != "/img" {
		t.Errorf("image volume at %s", mps[4].Destination)
	}
	if _, err := s.ResolveMounts([]MountSpec{{Type: "tmpfs", Target: "/t"}, {Type: "tmpfs", Target: "/t/"}}, nil); !errors.Is(err, ErrInvalidMount) {
		t.Errorf("a duplicate mount point: %v", err)
	}
}
