package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
)

// BindOptions are a bind mount's options, as docker's Mount.BindOptions.
type BindOptions struct {
	Propagation string `json:"Propagation,omitempty"` // private, rprivate (default), slave, rslave
}

// validPropagation are the bind propagations kiln applies. shared and
// rshared, which would let the container's mounts reach the host, are
// refused: the sandbox's mount tree is a slave of the host's at most.
var validPropagation = map[string]bool{"private": true, "rprivate": true, "slave": true, "rslave": true}

// TmpfsOptions are a tmpfs mount's options, as docker's Mount.TmpfsOptions;
// Options holds --tmpfs's mount options.
type TmpfsOptions struct {
	SizeBytes int64       `json:"SizeBytes,omitempty"`
	Mode      fs.FileMode `json:"Mode,omitempty"`
	Options   []string    `json:"Options,omitempty"`
}

// tmpfsFlagOptions and tmpfsDataOptions are the mount options --tmpfs
// PATH:OPTIONS may give: the generic flags and tmpfs(5)'s. Anything else
// is refused.
var tmpfsFlagOptions = map[string]bool{
	"ro": true, "rw": true, "exec": true, "noexec": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"atime": true, "noatime": true, "diratime": true, "nodiratime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "sync": true, "async": true, "dirsync": true,
}

var tmpfsDataOptions = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "huge": true, "mpol": true}

// ParseTmpfsFlag parses docker's --tmpfs PATH[:OPTIONS] (OPTIONS as
// mount(8)'s: "size=64m,mode=1777,exec"); sizes take docker's suffixes.
func ParseTmpfsFlag(spec string) (MountSpec, error) {
	target, opts, _ := strings.Cut(spec, ":")
	m := MountSpec{Type: "tmpfs", Target: target}
	if opts != "" {
		o := &TmpfsOptions{}
		for _, opt := range strings.Split(opts, ",") {
			k, v, hasValue := strings.Cut(opt, "=")
			switch {
			case !hasValue && tmpfsFlagOptions[k]:
				if k == "ro" {
					m.ReadOnly = true
				}
				o.Options = append(o.Options, k)
			case hasValue && k == "size":
				n, err := units.RAMInBytes(v)
				if err != nil || n <= 0 {
					return MountSpec{}, fmt.Errorf("%w: --tmpfs %q: invalid size %q", ErrInvalidMount, spec, v)
				}
				o.SizeBytes = n
			case hasValue && k == "mode":
				n, err := strconv.ParseUint(v, 8, 32)
				if err != nil || n > 0o7777 {
					return MountSpec{}, fmt.Errorf("%w: --tmpfs %q: invalid mode %q (octal)", ErrInvalidMount, spec, v)
				}
				o.Mode = fs.FileMode(n)
			case hasValue && tmpfsDataOptions[k] && v != "" && !strings.ContainsAny(v, ", "):
				o.Options = append(o.Options, opt)
			default:
				return MountSpec{}, fmt.Errorf("%w: --tmpfs %q: unsupported option %q", ErrInvalidMount, spec, opt)
			}
		}
		m.TmpfsOptions = o
	}
	return m, validTarget("--tmpfs "+spec, m)
}

// tmpfsMountOptions are the mount options of a tmpfs mount: docker's
// nosuid,nodev,noexec defaults, then the size and mode asked for, then the
// --tmpfs options (which may undo a default, e.g. exec).
func tmpfsMountOptions(o *TmpfsOptions) []string {
	opts := []string{"nosuid", "nodev", "noexec"}
	if o == nil {
		return opts
	}
	if o.SizeBytes > 0 {
		opts = append(opts, "size="+strconv.FormatInt(o.SizeBytes, 10))
	}
	if o.Mode != 0 {
		opts = append(opts, "mode="+strconv.FormatUint(uint64(o.Mode), 8))
	}
	return append(opts, o.Options...)
}

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
// readonly/ro, volume-nocopy, bind-propagation, tmpfs-size, tmpfs-mode and
// consistency (only "consistent" or "default": what Linux gives). Every
// other option of docker's is refused, never ignored.
func ParseMountFlag(spec string) (MountSpec, error) {
	m := MountSpec{Type: "volume"}
	var propagation, size, mode string
	for _, kv := range strings.Split(spec, ",") {
		k, v, hasValue := strings.Cut(kv, "=")
		switch k = strings.ToLower(k); k {
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
		case "bind-propagation":
			propagation = v
		case "tmpfs-size":
			size = v
		case "tmpfs-mode":
			mode = v
		case "consistency":
			if v != "consistent" && v != "default" {
				return MountSpec{}, fmt.Errorf("%w: %q: consistency=%s is not supported (bind mounts on Linux are always consistent)", ErrInvalidMount, spec, v)
			}
		case "volume-driver", "volume-label", "volume-opt", "volume-subpath", "bind-nonrecursive", "bind-recursive",
			"bind-create-src", "tmpfs-options", "image-subpath":
			return MountSpec{}, fmt.Errorf("%w: %q: option %q is not supported by kiln", ErrInvalidMount, spec, k)
		default:
			return MountSpec{}, fmt.Errorf("%w: %q: unexpected key %q", ErrInvalidMount, spec, k)
		}
	}
	if propagation != "" {
		if m.Type != "bind" {
			return MountSpec{}, fmt.Errorf("%w: %q: bind-propagation is only for type=bind", ErrInvalidMount, spec)
		}
		if propagation == "shared" || propagation == "rshared" {
			return MountSpec{}, fmt.Errorf("%w: %q: bind-propagation=%s is not supported by kiln (a container's mounts never reach the host); use rslave", ErrInvalidMount, spec, propagation)
		}
		if !validPropagation[propagation] {
			return MountSpec{}, fmt.Errorf("%w: %q: invalid bind-propagation %q", ErrInvalidMount, spec, propagation)
		}
		m.BindOptions = &BindOptions{Propagation: propagation}
	}
	if size != "" || mode != "" {
		if m.Type != "tmpfs" {
			return MountSpec{}, fmt.Errorf("%w: %q: tmpfs-size and tmpfs-mode are only for type=tmpfs", ErrInvalidMount, spec)
		}
		o := &TmpfsOptions{}
		if size != "" {
			n, err := units.RAMInBytes(size)
			if err != nil || n <= 0 {
				return MountSpec{}, fmt.Errorf("%w: %q: invalid tmpfs-size %q", ErrInvalidMount, spec, size)
			}
			o.SizeBytes = n
		}
		if mode != "" {
			n, err := strconv.ParseUint(mode, 8, 32)
			if err != nil || n > 0o7777 {
				return MountSpec{}, fmt.Errorf("%w: %q: invalid tmpfs-mode %q (octal, e.g. 1770)", ErrInvalidMount, spec, mode)
			}
			o.Mode = fs.FileMode(n)
		}
		m.TmpfsOptions = o
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
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
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
