package container

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
		"type=bind,source=" + dir + ",target=/x":                                          {Type: "bind", Source: dir, Target: "/x"},
		"type=bind,src=" + dir + ",dst=/x,readonly":                                       {Type: "bind", Source: dir, Target: "/x", ReadOnly: true},
		"type=volume,source=v,target=/x,volume-nocopy":                                    {Type: "volume", Source: "v", Target: "/x", NoCopy: true},
		"source=v,destination=/x,ro=true":                                                 {Type: "volume", Source: "v", Target: "/x", ReadOnly: true},
		"type=tmpfs,target=/t,tmpfs-size=1m":                                              {Type: "tmpfs", Target: "/t", TmpfsOptions: &TmpfsOptions{SizeBytes: 1 << 20}},
		"type=tmpfs,dst=/t,tmpfs-mode=1770":                                               {Type: "tmpfs", Target: "/t", TmpfsOptions: &TmpfsOptions{Mode: 0o1770}},
		"type=bind,src=" + dir + ",dst=/x,bind-propagation=rslave,consistency=consistent": {Type: "bind", Source: dir, Target: "/x", BindOptions: &BindOptions{Propagation: "rslave"}},
	} {
		if got, err := ParseMountFlag(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMountFlag(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{
		"type=bind,target=/x", "type=bind,source=/no/such/dir,target=/x", "type=nfs,target=/x",
		"type=tmpfs,source=x,target=/t", "type=volume,target=rel", "bogus=1,target=/x",
		"type=tmpfs,target=/t,tmpfs-size=0", "type=tmpfs,target=/t,tmpfs-mode=8", "type=volume,target=/t,tmpfs-mode=1",
		"type=bind,source=" + dir + ",target=/x,bind-propagation=rshared", "type=bind,source=" + dir + ",target=/x,bind-propagation=up",
		"type=tmpfs,target=/t,bind-propagation=slave", "type=bind,source=" + dir + ",target=/x,consistency=delegated",
		"type=volume,target=/x,volume-opt=o=1", "type=volume,target=/x,volume-subpath=a",
	} {
		if _, err := ParseMountFlag(bad); !errors.Is(err, ErrInvalidMount) {
			t.Errorf("ParseMountFlag(%q): %v", bad, err)
		}
	}
}

func TestParseTmpfsFlag(t *testing.T) {
	for in, want := range map[string]MountSpec{
		"/t": {Type: "tmpfs", Target: "/t"},
		"/t:size=64m,mode=1777,exec,uid=1000": {Type: "tmpfs", Target: "/t",
			TmpfsOptions: &TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777, Options: []string{"exec", "uid=1000"}}},
		"/t:ro": {Type: "tmpfs", Target: "/t", ReadOnly: true, TmpfsOptions: &TmpfsOptions{Options: []string{"ro"}}},
	} {
		got, err := ParseTmpfsFlag(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseTmpfsFlag(%q) = %+v, %v", in, got, err)
		}
	}
	if got := tmpfsMountOptions(&TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700, Options: []string{"exec"}}); strings.Join(got, ",") != "nosuid,nodev,noexec,size=1048576,mode=700,exec" {
		t.Errorf("tmpfsMountOptions = %v", got)
	}
	for _, bad := range []string{"rel", "/", "/t:size=big", "/t:mode=9", "/t:bind", "/t:size", "/t:uid=", "/t:mpol=a b"} {
		if _, err := ParseTmpfsFlag(bad); !errors.Is(err, ErrInvalidMount) {
			t.Errorf("ParseTmpfsFlag(%q): %v", bad, err)
		}
	}
}

func TestParseGpus(t *testing.T) {
	gpu := [][]string{{"gpu"}}
	for in, want := range map[string]DeviceRequest{
		"all":                      {Count: -1, Capabilities: gpu},
		"2":                        {Count: 2, Capabilities: gpu},
		"count=all":                {Count: -1, Capabilities: gpu},
		`"device=0,1"`:             {DeviceIDs: []string{"0", "1"}, Capabilities: gpu},
		"device=GPU-abc":           {DeviceIDs: []string{"GPU-abc"}, Capabilities: gpu},
		"count=1,driver=nvidia":    {Count: 1, Driver: "nvidia", Capabilities: gpu},
		"capabilities=gpu,count=1": {Count: 1, Capabilities: gpu},
	} {
		got, err := ParseGpus(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseGpus(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"0", "-1", "count=x", "driver=amd", "count=1,device=0", "what=1", "x"} {
		if _, err := ParseGpus(bad); err == nil {
			t.Errorf("ParseGpus(%q) accepted", bad)
		}
	}
	if !IsCDIDevice("nvidia.com/gpu=all") || IsCDIDevice("/dev/fuse") || IsCDIDevice("/dev/sda:/dev/xvda") {
		t.Errorf("IsCDIDevice")
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
