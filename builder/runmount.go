package builder

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/runner"
)

// runMounts are the mounts a RUN's --mount flags ask for. prepareRunMounts
// works out what they are and what they add to the step's cache key;
// acquire, called only when the step runs, makes them (locks cache mounts,
// copies bound context files, writes secrets).
type runMounts struct {
	mounts []runner.Mount
	// env are secrets mounted as environment variables (never in a key).
	env []string
	// key is what the mounts add to the step's cache key (never a secret's content).
	key any
	// plan makes each mount, in --mount order.
	plan []mountPlan
	// releases undo what acquire did, in reverse.
	releases []func()
	// secrets is the tmpfs holding this RUN's secret files, once made.
	secrets string
}

// mountPlan makes one mount. cacheKey orders the cache mounts' locks (taken
// first, in key order, so that two RUNs never wait for each other's).
type mountPlan struct {
	cacheKey string
	acquire  func(ctx context.Context, m *runMounts) (*runner.Mount, error)
}

// mountKey is a mount as the step's cache key sees it.
type mountKey struct {
	Type, Target     string
	Source, From     string        `json:",omitempty"`
	FromKey          digest.Digest `json:",omitempty"`
	ID, Sharing, Env string        `json:",omitempty"`
	ReadOnly         bool          `json:",omitempty"`
	Required         bool          `json:",omitempty"`
	Mode, UID, GID   *uint64       `json:",omitempty"`
	Size             int64         `json:",omitempty"`
	// Files is a bind mount's content from the context.
	Files []string `json:",omitempty"`
}

// release gives back what acquire took: locks, temporary copies, secrets.
func (m *runMounts) release() {
	for i := len(m.releases) - 1; i >= 0; i-- {
		m.releases[i]()
	}
	m.releases = nil
}

// acquire makes the mounts. On error, what it made so far is released by release.
func (m *runMounts) acquire(ctx context.Context) error {
	made := make([]*runner.Mount, len(m.plan))
	order := make([]int, len(m.plan))
	for i := range order {
		order[i] = i
	}
	// Cache mounts first, by key; then the rest in order.
	slices.SortStableFunc(order, func(a, b int) int {
		ka, kb := m.plan[a].cacheKey, m.plan[b].cacheKey
		switch {
		case ka != "" && kb != "":
			return strings.Compare(ka, kb)
		case ka != "":
			return -1
		case kb != "":
			return 1
		}
		return 0
	})
	for _, i := range order {
		if m.plan[i].acquire == nil {
			continue
		}
		mt, err := m.plan[i].acquire(ctx, m)
		if err != nil {
			return err
		}
		made[i] = mt
	}
	for _, mt := range made {
		if mt != nil {
			m.mounts = append(m.mounts, *mt)
		}
	}
	return nil
}

// prepareRunMounts turns a RUN's --mount flags into a plan of sandbox
// mounts and their part of the cache key. During the dry pass it checks
// them and notes the stages they use.
func (b *build) prepareRunMounts(ctx context.Context, st *stage, c *instructions.RunCommand) (*runMounts, error) {
	m := &runMounts{}
	var keys []mountKey
	// A cache mount named twice in one RUN is one directory, locked once.
	caches := map[string]*cache.CacheMount{}
	for _, mt := range instructions.GetMounts(c) {
		what := "RUN --mount=type=" + string(mt.Type)
		if mt.Target != "" {
			what += ",target=" + mt.Target
		}
		target := mt.Target
		if target != "" && !path.IsAbs(target) {
			target = resolveWorkdir(st.img.Config.WorkingDir, target)
		}
		if target != "" {
			target = path.Clean(target)
		}
		if mt.Type != instructions.MountTypeSecret && mt.Type != instructions.MountTypeSSH {
			if target == "" {
				return nil, fmt.Errorf("%s: target is required", what)
			}
			if target == "/" {
				return nil, fmt.Errorf("%s: invalid mount target %q", what, target)
			}
		}
		var (
			k    mountKey
			plan mountPlan
			err  error
		)
		switch mt.Type {
		case instructions.MountTypeCache:
			k, plan, err = b.cacheMount(ctx, st, mt, target, caches)
		case instructions.MountTypeBind:
			k, plan, err = b.bindMount(ctx, st, mt, target)
		case instructions.MountTypeTmpfs:
			k, plan = tmpfsMount(mt, target)
		case instructions.MountTypeSecret:
			k, plan, err = b.secretMount(mt, target)
		case instructions.MountTypeSSH:
			err = fmt.Errorf("not supported: kiln has no SSH agent forwarding (use type=secret)")
		default:
			err = fmt.Errorf("unknown mount type")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		keys = append(keys, k)
		m.plan = append(m.plan, plan)
	}
	if len(keys) > 0 {
		m.key = keys
	}
	return m, nil
}

// tmpfsMount is a fresh tmpfs, gone with the RUN.
func tmpfsMount(mt *instructions.Mount, target string) (mountKey, mountPlan) {
	opts := []string{"nosuid", "nodev"}
	if mt.SizeLimit > 0 {
		opts = append(opts, fmt.Sprintf("size=%d", mt.SizeLimit))
	}
	if mt.ReadOnly {
		opts = append(opts, "ro")
	}
	k := mountKey{Type: "tmpfs", Target: target, Size: mt.SizeLimit, ReadOnly: mt.ReadOnly}
	return k, mountPlan{acquire: func(context.Context, *runMounts) (*runner.Mount, error) {
		return &runner.Mount{Type: "tmpfs", Source: "tmpfs", Target: target, Options: opts}, nil
	}}
}

// bindMount binds a path of the build context (a copy of it, with the
// .dockerignore applied and owned by root, as BuildKit sees the context), or
// of a stage or an image. Read-only unless rw: then writes go to the copy
// (or a throwaway overlay upper) and are discarded.
func (b *build) bindMount(ctx context.Context, st *stage, mt *instructions.Mount, target string) (mountKey, mountPlan, error) {
	source := mt.Source
	if source == "" {
		source = "/"
	}
	k := mountKey{Type: "bind", Target: target, Source: path.Clean("/" + source), From: mt.From, ReadOnly: mt.ReadOnly}
	opts := []string{"nosuid"}
	if mt.ReadOnly {
		opts = append(opts, "ro")
	}
	if mt.From != "" {
		ts, err := b.resolveFrom(ctx, st, mt.From)
		if err != nil || ts == nil {
			return k, mountPlan{}, err
		}
		k.FromKey = ts.key
		return k, mountPlan{acquire: func(ctx context.Context, m *runMounts) (*runner.Mount, error) {
			dir, release, err := b.mountTree(ts)
			if err != nil {
				return nil, fmt.Errorf("RUN --mount from=%s: %w", mt.From, err)
			}
			m.releases = append(m.releases, release)
			real, err := resolveIn(dir, source)
			if err != nil {
				return nil, fmt.Errorf("RUN --mount from=%s,source=%s: %w", mt.From, source, err)
			}
			return &runner.Mount{Type: "bind", Source: real, Target: target, Options: opts}, nil
		}}, nil
	}
	srcs, err := b.contextSources(copyRequest{name: "RUN --mount", sd: instructions.SourcesAndDest{SourcePaths: []string{source}}})
	if err != nil {
		return k, mountPlan{}, err
	}
	if len(srcs) != 1 {
		return k, mountPlan{}, fmt.Errorf("source=%s matches %d paths: it must name one", source, len(srcs))
	}
	src := srcs[0]
	if b.dry {
		return k, mountPlan{}, nil
	}
	files, err := walkSource(src, b.ignore)
	if err != nil {
		return k, mountPlan{}, fmt.Errorf("source=%s: %w", source, err)
	}
	if err := hashFiles(files, b.statCache()); err != nil {
		return k, mountPlan{}, fmt.Errorf("source=%s: %w", source, err)
	}
	if src.info.IsDir() {
		k.Files = append(k.Files, fmt.Sprintf(". d %o", unixPerm(src.info.Mode())))
	}
	for _, f := range files {
		k.Files = append(k.Files, f.describe())
	}
	return k, mountPlan{acquire: func(ctx context.Context, m *runMounts) (*runner.Mount, error) {
		dir, err := b.store.TempDir("bind-")
		if err != nil {
			return nil, err
		}
		m.releases = append(m.releases, func() { os.RemoveAll(dir) })
		host, err := b.copyContextSource(ctx, src, files, dir)
		if err != nil {
			return nil, fmt.Errorf("RUN --mount source=%s: %w", source, err)
		}
		return &runner.Mount{Type: "bind", Source: host, Target: target, Options: opts}, nil
	}}, nil
}

// copyContextSource copies a context source (a directory's contents, or a
// file) into the empty directory dir, owned by root, and returns the path to
// bind: dir itself, or the file in it.
func (b *build) copyContextSource(ctx context.Context, src source, files []*contextFile, dir string) (string, error) {
	target, host := "/", dir
	if !src.info.IsDir() {
		target = "/" + src.base
		host = filepath.Join(dir, src.base)
	} else if err := os.Chmod(dir, src.info.Mode().Perm()); err != nil {
		return "", err
	}
	plan := copyPlan{items: []copyItem{{src: src, files: files, target: target}}}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(plan.writeTar(ctx, tar.NewWriter(pw))) }()
	_, err := layer.Apply(ctx, dir, pr, layer.ApplyOptions{})
	pr.CloseWithError(err)
	return host, err
}

// resolveIn resolves p inside the tree at dir (symlinks cannot leave it) and
// returns the host path it names.
func resolveIn(dir, p string) (string, error) {
	r, err := openRootfs(dir)
	if err != nil {
		return "", err
	}
	defer r.Close()
	real, _, err := r.resolve(p)
	return real, err
}

// cacheMount is a directory of the store that persists across builds; only
// its spec, never its contents, is part of the cache key.
func (b *build) cacheMount(ctx context.Context, st *stage, mt *instructions.Mount, target string, caches map[string]*cache.CacheMount) (mountKey, mountPlan, error) {
	id := mt.CacheID
	if id == "" {
		id = path.Clean(mt.Target)
	}
	// BuildKit namespaces cache IDs with this build argument.
	id = b.opts.BuildArgs["BUILDKIT_CACHE_MOUNT_NS"] + "/" + id
	sharing := cache.SharingShared
	if mt.CacheSharing != "" {
		sharing = cache.CacheSharing(mt.CacheSharing)
	}
	source := path.Clean("/" + mt.Source)
	k := mountKey{Type: "cache", Target: target, ID: id, Sharing: string(sharing), ReadOnly: mt.ReadOnly,
		From: mt.From, Mode: mt.Mode, UID: mt.UID, GID: mt.GID}
	if source != "/" {
		k.Source = source
	}
	if mt.From == "" && source != "/" {
		return k, mountPlan{}, fmt.Errorf("source=%s needs from= (a stage or an image to take it from)", mt.Source)
	}
	var ts *treeSource
	if mt.From != "" {
		var err error
		if ts, err = b.resolveFrom(ctx, st, mt.From); err != nil || ts == nil {
			return k, mountPlan{}, err
		}
		k.FromKey = ts.key
	}
	// As BuildKit, a cache made with other owner, mode or seed is another
	// cache: the store keys it by all of them.
	// Target, sharing and ro do not make another cache.
	storeKey := id
	if mt.UID != nil || mt.GID != nil || mt.Mode != nil || ts != nil {
		storeKey = string(mustJSON(struct {
			ID             string
			UID, GID, Mode *uint64
			From           digest.Digest `json:",omitempty"`
			Source         string        `json:",omitempty"`
		}{id, mt.UID, mt.GID, mt.Mode, k.FromKey, k.Source}))
	}
	if b.dry {
		return k, mountPlan{}, nil
	}
	uid, gid, mode := 0, 0, uint64(0o755)
	if mt.UID != nil {
		uid = int(*mt.UID)
	}
	if mt.GID != nil {
		gid = int(*mt.GID)
	}
	if mt.Mode != nil {
		mode = *mt.Mode
	}
	init := func(dir string) error {
		if ts != nil {
			if err := b.seedCache(ctx, ts, source, dir); err != nil {
				return err
			}
			if source != "/" || (mt.UID == nil && mt.GID == nil && mt.Mode == nil) {
				return nil // the seed's own owner and mode
			}
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		return os.Chmod(dir, os.FileMode(mode&0o777)|unixModeBits(mode))
	}
	opts := []string{"nosuid"}
	if mt.ReadOnly {
		opts = append(opts, "ro")
	}
	return k, mountPlan{cacheKey: storeKey, acquire: func(ctx context.Context, m *runMounts) (*runner.Mount, error) {
		cm, ok := caches[storeKey]
		if !ok {
			var err error
			cm, err = b.store.OpenCacheMount(ctx, storeKey, sharing, init, func() {
				st.vtx.logf("waiting for cache mount %s (sharing=%s)", id, sharing)
			})
			if err != nil {
				return nil, fmt.Errorf("RUN --mount=type=cache,id=%s: %w", id, err)
			}
			caches[storeKey] = cm
			m.releases = append(m.releases, func() { cm.Release() })
		}
		return &runner.Mount{Type: "bind", Source: cm.Dir, Target: target, Options: opts}, nil
	}}, nil
}

// unixModeBits converts setuid, setgid and sticky from a stat mode to a FileMode.
func unixModeBits(mode uint64) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// seedCache fills a new cache directory with source's contents in a stage
// or image, owners and modes kept.
func (b *build) seedCache(ctx context.Context, ts *treeSource, srcPath, dir string) error {
	tree, release, err := b.mountTree(ts)
	if err != nil {
		return err
	}
	defer release()
	real, err := resolveIn(tree, srcPath)
	if err != nil {
		return fmt.Errorf("from=%s,source=%s: %w", ts.name, srcPath, err)
	}
	info, err := os.Lstat(real)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("from=%s,source=%s: not a directory", ts.name, srcPath)
	}
	src := source{path: real, base: path.Base(real), name: srcPath, info: info}
	files, err := walkSource(src, nil)
	if err != nil {
		return err
	}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(dir, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, info.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	plan := copyPlan{preserveOwner: true, items: []copyItem{{src: src, files: files, target: "/"}}}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(plan.writeTar(ctx, tar.NewWriter(pw))) }()
	_, err = layer.Apply(ctx, dir, pr, layer.ApplyOptions{})
	pr.CloseWithError(err)
	return err
}
