package main

import (
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

// cacheSpec is a parsed --cache-from/--cache-to value:
// "type=local,src=DIR", "type=local,dest=DIR", "type=registry,ref=NAME";
// a bare DIR means a local one.
type cacheSpec struct{ kind, path string }

func parseCacheSpec(spec, pathKey string) (cacheSpec, error) {
	if !strings.Contains(spec, "=") {
		return cacheSpec{kind: "local", path: spec}, nil
	}
	var c cacheSpec
	for _, field := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "type":
			c.kind = v
		case pathKey, "ref":
			c.path = v
		case "mode", "compression", "oci-mediatypes", "image-manifest", "ignore-error":
			// kiln exports every step it used (mode=max) with the build's compression.
		default:
			return c, fmt.Errorf("%q: unknown option %s", spec, k)
		}
	}
	switch {
	case c.kind != "local" && c.kind != "registry":
		return c, fmt.Errorf("%q: cache type %q is not supported (use local or registry)", spec, c.kind)
	case c.path == "" && c.kind == "local":
		return c, fmt.Errorf("%q: %s=DIR is required", spec, pathKey)
	case c.path == "":
		return c, fmt.Errorf("%q: ref=NAME is required", spec)
	}
	return c, nil
}

func cacheImporters(specs []string, ropts registry.Options) ([]builder.CacheImporter, error) {
	var out []builder.CacheImporter
	for _, spec := range specs {
		c, err := parseCacheSpec(spec, "src")
		if err != nil {
			return nil, err
		}
		if c.kind == "registry" {
			rc, err := registry.NewCache(c.path, ropts)
			if err != nil {
				return nil, err
			}
			out = append(out, rc)
			continue
		}
		src, err := cache.OpenCacheSource(c.path)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

func cacheExporter(spec string, ropts registry.Options) (builder.CacheExporter, error) {
	if spec == "" {
		return nil, nil
	}
	c, err := parseCacheSpec(spec, "dest")
	if err != nil {
		return nil, err
	}
	if c.kind == "registry" {
		return registry.NewCache(c.path, ropts)
	}
	return cache.LocalCacheExport{Dir: c.path}, nil
}
