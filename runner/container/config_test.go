package container

import (
	"errors"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNewConfig(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/bin", "A=image"},
		WorkingDir: "/w", User: "app", StopSignal: "SIGQUIT", Labels: map[string]string{"l": "image"},
	}
	for _, tc := range []struct {
		name       string
		o          CreateOptions
		path       string
		args       []string
		user, wd   string
		stopSignal string
	}{
		{"image defaults", CreateOptions{}, "/entry", []string{"default"}, "app", "/w", "SIGQUIT"},
		{"command replaces CMD", CreateOptions{Cmd: []string{"x", "y"}}, "/entry", []string{"x", "y"}, "app", "/w", "SIGQUIT"},
		{"entrypoint drops CMD", CreateOptions{Entrypoint: []string{"sh"}, EntrypointSet: true}, "sh", []string{}, "app", "/w", "SIGQUIT"},
		{"entrypoint and command", CreateOptions{Entrypoint: []string{"sh"}, EntrypointSet: true, Cmd: []string{"-c", "x"}}, "sh", []string{"-c", "x"}, "app", "/w", "SIGQUIT"},
		{"empty entrypoint", CreateOptions{EntrypointSet: true, Cmd: []string{"ls"}}, "ls", []string{}, "app", "/w", "SIGQUIT"},
		{"overrides", CreateOptions{User: "0", WorkingDir: "/o", StopSignal: "TERM"}, "/entry", []string{"default"}, "0", "/o", "TERM"},
	} {
		o := tc.o
		o.ImageConfig = img
		c, err := NewConfig(o)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.Path != tc.path || !slices.Equal(c.Args, tc.args) || c.Config.User != tc.user || c.Config.WorkingDir != tc.wd || c.Config.StopSignal != tc.stopSignal {
			t.Errorf("%s: %q %q user %q wd %q stop %q", tc.name, c.Path, c.Args, c.Config.User, c.Config.WorkingDir, c.Config.StopSignal)
		}
		if c.HostConfig.RestartPolicy.Name != "no" || len(c.HostConfig.MaskedPaths) == 0 {
			t.Errorf("%s: host config defaults %+v", tc.name, c.HostConfig)
		}
	}
	// -e over the image's ENV; labels merged.
	c, err := NewConfig(CreateOptions{ImageConfig: img, Env: []string{"A=run", "B=new", "bare"}, Labels: map[string]string{"m": "run"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Config.Env, []string{"PATH=/bin", "A=run", "B=new"}) || c.Config.Labels["l"] != "image" || c.Config.Labels["m"] != "run" {
		t.Errorf("env %q labels %v", c.Config.Env, c.Config.Labels)
	}
	// Privileged containers keep /proc and /sys unmasked.
	c, _ = NewConfig(CreateOptions{ImageConfig: img, HostConfig: HostConfig{Privileged: true}})
	if len(c.HostConfig.MaskedPaths) != 0 || len(c.HostConfig.ReadonlyPaths) != 0 {
		t.Errorf("privileged masks %v %v", c.HostConfig.MaskedPaths, c.HostConfig.ReadonlyPaths)
	}
	// Errors.
	if _, err := NewConfig(CreateOptions{}); !errors.Is(err, errNoCommand) {
		t.Errorf("no command: %v", err)
	}
	if _, err := NewConfig(CreateOptions{ImageConfig: img, StopSignal: "SIGNOPE"}); err == nil {
		t.Errorf("a bad stop signal was taken")
	}
	if _, err := NewConfig(CreateOptions{ImageConfig: img, HostConfig: HostConfig{CapAdd: []string{"NOPE"}}}); err == nil {
		t.Errorf("a bad capability was taken")
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]RestartPolicy{
		"": {"no", 0}, "no": {"no", 0}, "always": {"always", 0}, "unless-stopped": {"unless-stopped", 0},
		"on-failure": {"on-failure", 0}, "on-failure:3": {"on-failure", 3},
	} {
		if got, err := ParseRestartPolicy(in); err != nil || got != want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"sometimes", "always:2", "on-failure:x", "on-failure:-1", "no:1"} {
		if _, err := ParseRestartPolicy(bad); err == nil {
			t.Errorf("ParseRestartPolicy(%q) succeeded", bad)
		}
	}
}

func TestParseBytesAndSignal(t *testing.T) {
	for in, want := range map[string]int64{
		"16m": 16 << 20, "16M": 16 << 20, "16mb": 16 << 20, "1g": 1 << 30, "512k": 512 << 10, "100": 100, "100b": 100,
		"1.5g": 3 << 29, "2MiB": 2 << 20, "1t": 1 << 40,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1m", "m", "1x"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]int{"SIGTERM": 15, "TERM": 15, "term": 15, "9": 9, "SIGKILL": 9, "USR1": 10} {
		if got, err := ParseSignal(in); err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "SIGNOPE", "0", "65", "-1"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) succeeded", bad)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]DeviceMapping{
		"/dev/null":             {"/dev/null", "/dev/null", "rwm"},
		"/dev/null:/dev/n":      {"/dev/null", "/dev/n", "rwm"},
		"/dev/null:r":           {"/dev/null", "/dev/null", "r"},
		"/dev/null:/dev/n:rw":   {"/dev/null", "/dev/n", "rw"},
		"/dev/zero:/x/y/zero:m": {"/dev/zero", "/x/y/zero", "m"},
	} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"/dev/nope", "/etc/passwd", "null", "/dev/null:rel", "/dev/null:/n:rx", "/dev/null:/a:r:x"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) succeeded", bad)
		}
	}
}

// A detached container's stdin stays open across attaches, as docker's.
func TestNewConfigStdinOnce(t *testing.T) {
	img := ocispec.ImageConfig{Cmd: []string{"cat"}}
	for _, tc := range []struct {
		open, detach, once, attach bool
	}{{true, false, true, true}, {true, true, false, false}, {false, false, false, false}} {
		c, err := NewConfig(CreateOptions{ImageConfig: img, OpenStdin: tc.open, Detach: tc.detach})
		if err != nil {
			t.Fatal(err)
		}
		if cc := c.Config; cc.StdinOnce != tc.once || cc.AttachStdin != tc.attach || cc.AttachStdout == tc.detach {
			t.Errorf("-i %v -d %v: %+v", tc.open, tc.detach, cc)
		}
	}
}
