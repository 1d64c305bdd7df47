package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrInvalidMount: a -v or --mount spec kiln cannot use.
var ErrInvalidMount = errors.New("invalid mount spec")

// ParseVolumeFlag parses docker's -v: "NAME:/path[:opts]", "/host:/path[:opts]"
// or "/path" (an anonymous volume); opts are "ro" or "rw".
func ParseVolumeFlag(spec string) (MountSpec, error) {
	parts := strings.Split(spec, ":")
	var m MountSpec
	switch len(parts) {
	case 1:
		m = MountSpec{Type: "volume", Target: parts[0]}
	case 2, 3:
		m = MountSpec{Type: "volume", Source: parts[0], Target: parts[1]}
		if strings.HasPrefix(parts[0], "/") || strings.HasPrefix(parts[0], ".") {
			m.Type = "bind"
		}
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					m.ReadOnly = true
				case "nocopy":
					m.NoCopy = true
				case "rw", "z", "Z", "private", "rprivate":
				default:
					return MountSpec{}, fmt.Errorf("%w: %q: unknown option %q", ErrInvalidMount, spec, o)
				}
			}
		}
	default:
		return MountSpec{}, fmt.Errorf("%w: %q: too many colons", ErrInvalidMount, spec)
	}
	if parts[0] == "" || m.Target == "" {
		return MountSpec{}, fmt.Errorf("%w: %q", ErrInvalidMount, spec)
	}
	return m, validTarget(spec, m)
}

// ParseMountFlag parses docker's --mount: comma-separated key=value pairs
// type (bind, volume, tmpfs; default volume), source/src, target/destination/dst,
// readonly/ro.
func ParseMountFlag(spec string) (MountSpec, error) {
	m := MountSpec{Type: "volume"}
	for _, kv := range strings.Split(spec, ",") {
		k, v, hasValue := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly = !hasValue || v == "1" || v == "true"
		case "volume-nocopy":
			m.NoCopy = !hasValue || v == "1" || v == "true"
		case "bind-propagation", "tmpfs-size", "tmpfs-mode", "consistency":
		default:
			return MountSpec{}, fmt.Errorf("%w: %q: unexpected key %q", ErrInvalidMount, spec, k)
		}
	}
	switch m.Type {
	case "bind":
		if m.Source == "" {
			return MountSpec{}, fmt.Errorf("%w: %q: bind needs a source", ErrInvalidMount, spec)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return MountSpec{}, fmt.Errorf("%w: %q: bind source path does not exist: %s", ErrInvalidMount, spec, m.Source)
		}
	case "volume":
	case "tmpfs":
		if m.Source != "" {
			return MountSpec{}, fmt.Errorf("%w: %q: tmpfs takes no source", ErrInvalidMount, spec)
		}
	default:
		return MountSpec{}, fmt.Errorf("%w: %q: unknown type %q", ErrInvalidMount, spec, m.Type)
	}
	return m, validTarget(spec, m)
}

func validTarget(spec string, m MountSpec) error {
	if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
		return fmt.Errorf("%w: %q: the destination must be an absolute path other than /", ErrInvalidMount, spec)
	}
	return nil
}

// ResolveMounts turns mount requests plus the image's VOLUMEs into mount
// points: named volumes are created when missing, anonymous ones made for
// -v /path and for image volumes nothing else covers, bind sources made
// absolute (a missing -v source directory is created, as docker does).
func (s *Store) ResolveMounts(specs []MountSpec, imageVolumes map[string]struct{}) ([]MountPoint, error) {
	var out []MountPoint
	seen := map[string]bool{}
	for _, m := range specs {
		target := path.Clean(m.Target)
		if seen[target] {
			return nil, fmt.Errorf("%w: duplicate mount point: %s", ErrInvalidMount, target)
		}
		seen[target] = true
		mp := MountPoint{Type: m.Type, Destination: target, RW: !m.ReadOnly, Mode: "", Propagation: ""}
		switch m.Type {
		case "bind":
			src, err := filepath.Abs(m.Source)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(src); err != nil {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("%w: bind source %s: %v", ErrInvalidMount, src, err)
				}
			}
			mp.Source, mp.Propagation = src, "rprivate"
		case "volume":
			v, err := s.CreateVolume(m.Source, nil)
			if err != nil {
				return nil, err
			}
			mp.Name, mp.Source, mp.Driver, mp.Mode = v.Name, v.Mountpoint, "local", "z"
		case "tmpfs":
		}
		if m.ReadOnly && mp.Mode == "" {
			mp.Mode = "ro"
		}
		out = append(out, mp)
	}
	targets := make([]string, 0, len(imageVolumes))
	for t := range imageVolumes {
		targets = append(targets, path.Clean(t))
	}
	sort.Strings(targets)
	for _, t := range targets {
		if seen[t] || t == "/" {
			continue
		}
		seen[t] = true
		v, err := s.CreateVolume("", nil)
		if err != nil {
			return nil, err
		}
		out = append(out, MountPoint{Type: "volume", Name: v.Name, Source: v.Mountpoint, Destination: t, Driver: "local", RW: true})
	}
	return out, nil
}
