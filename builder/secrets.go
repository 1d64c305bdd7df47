package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/runner"
)

// SecretSource is where a build secret's value comes from: a file or an
// environment variable of the kiln process. It is read only while a RUN that
// mounts it runs, and never enters a layer, the history or a cache key.
type SecretSource struct {
	File string
	Env  string
}

// ErrSecretNotFound is wrapped by errors about a secret that was not provided.
var ErrSecretNotFound = errors.New("secret not found")

// read returns the secret's value.
func (s SecretSource) read() ([]byte, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set: %w", s.Env, ErrSecretNotFound)
		}
		return []byte(v), nil
	}
	data, err := os.ReadFile(s.File)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	return data, nil
}

// ParseSecret reads a --secret value as docker buildx does:
// "id=NAME,src=FILE" (or source=), "id=NAME,env=VAR", "type=file|env" to
// say which; with neither src nor env, the environment variable NAME if it
// is set, else the file NAME.
func ParseSecret(spec string) (string, SecretSource, error) {
	var id, typ, src, env string
	for _, field := range strings.Split(spec, ",") {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			return "", SecretSource{}, fmt.Errorf("secret %q: field %q must be a key=value pair", spec, field)
		}
		switch strings.ToLower(key) {
		case "type":
			if value != "file" && value != "env" {
				return "", SecretSource{}, fmt.Errorf("secret %q: unsupported type %q (want file or env)", spec, value)
			}
			typ = value
		case "id":
			id = value
		case "src", "source":
			src = value
		case "env":
			env = value
		default:
			return "", SecretSource{}, fmt.Errorf("secret %q: unexpected key %q", spec, key)
		}
	}
	if id == "" {
		return "", SecretSource{}, fmt.Errorf("secret %q: id is required", spec)
	}
	if typ == "env" && env == "" {
		env, src = src, ""
	}
	switch {
	case src != "" && env != "":
		return "", SecretSource{}, fmt.Errorf("secret %q: src and env are exclusive", spec)
	case typ == "file" && src == "" && env == "":
		src = id
	case src == "" && env == "":
		if _, ok := os.LookupEnv(id); ok {
			env = id
		} else {
			src = id
		}
	}
	if src != "" {
		if _, err := os.Stat(src); err != nil {
			return "", SecretSource{}, fmt.Errorf("secret %s: %w", id, err)
		}
	}
	return id, SecretSource{File: src, Env: env}, nil
}

// secretMount mounts a secret as a read-only file on a tmpfs private to the
// RUN (by default /run/secrets/ID), or sets it as an environment variable
// (env=). The key holds the secret's id and how it is mounted, never its
// value. A secret that was not provided is skipped unless required.
func (b *build) secretMount(mt *instructions.Mount, target string) (mountKey, mountPlan, error) {
	id := mt.CacheID
	if mt.Source != "" {
		id = mt.Source
	}
	if id == "" {
		if target == "" {
			return mountKey{}, mountPlan{}, errors.New("one of id, source or target is required")
		}
		id = path.Base(target)
	}
	if mt.Env == nil && target == "" {
		target = "/run/secrets/" + path.Base(id)
	}
	var envName string
	if mt.Env != nil {
		envName = *mt.Env
		if envName == "" {
			envName = id
		}
	}
	uid, gid, mode := 0, 0, uint64(0o400)
	if mt.UID != nil {
		uid = int(*mt.UID)
	}
	if mt.GID != nil {
		gid = int(*mt.GID)
	}
	if mt.Mode != nil {
		mode = *mt.Mode
	}
	k := mountKey{Type: "secret", Target: target, ID: id, Env: envName, Required: mt.Required,
		Mode: mt.Mode, UID: mt.UID, GID: mt.GID}
	return k, mountPlan{acquire: func(ctx context.Context, m *runMounts) (*runner.Mount, error) {
		src, ok := b.opts.Secrets[id]
		if !ok {
			if mt.Required {
				return nil, fmt.Errorf("secret %s: %w (kiln build --secret id=%s,src=FILE)", id, ErrSecretNotFound, id)
			}
			return nil, nil
		}
		value, err := src.read()
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", id, err)
		}
		if envName != "" {
			m.env = append(m.env, envName+"="+string(value))
		}
		if target == "" {
			return nil, nil
		}
		if m.secrets == "" {
			dir, release, err := b.secretsTmpfs()
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", id, err)
			}
			m.secrets = dir
			m.releases = append(m.releases, release)
		}
		f, err := os.CreateTemp(m.secrets, "secret-")
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", id, err)
		}
		_, err = f.Write(value)
		if err == nil {
			err = f.Chown(uid, gid)
		}
		if err == nil {
			err = f.Chmod(os.FileMode(mode&0o777) | unixModeBits(mode))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", id, err)
		}
		return &runner.Mount{Type: "bind", Source: f.Name(), Target: target, Options: []string{"ro", "nosuid", "nodev", "noexec"}}, nil
	}}, nil
}

// secretsTmpfs mounts a small tmpfs, readable by root only, to hold a RUN's
// secret files: they are never on disk, and vanish with release (or with
// the build's mount namespace).
func (b *build) secretsTmpfs() (string, func(), error) {
	dir, err := b.store.TempDir("secrets-")
	if err != nil {
		return "", nil, err
	}
	tmpfs, unmount, err := mountPrivate(runner.Mount{Type: "tmpfs", Source: "tmpfs", Target: dir,
		Options: []string{"nosuid", "nodev", "noexec", "mode=0700", "size=16m"}})
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return tmpfs, func() {
		if err := unmount(); err != nil {
			b.opts.Log.Warn("unmount secrets", "err", err)
		}
		os.RemoveAll(dir)
	}, nil
}
