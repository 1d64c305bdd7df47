package builder

import (
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kiln-build/kiln/cache"
)

// TestCrossCompilePlatforms: the cross-compile pattern needs no emulation
// at all. A stage FROM --platform=$BUILDPLATFORM runs natively for each
// target, with BuildKit's platform ARGs; its result goes into a FROM scratch
// stage of each target platform. Two targets make an index whose images
// have the targets' platforms; one target makes a plain image of it; a
// rebuild is cached, with the same index; a bad FROM --platform is a
// one-line error naming the Dockerfile line.
func TestCrossCompilePlatforms(t *testing.T) {
	e := newBuildEnv(t)
	e.importBase("localhost/bb:latest")
	df := `FROM --platform=$BUILDPLATFORM localhost/bb:latest AS build
ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH
RUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT] $BUILDPLATFORM $BUILDOS $BUILDARCH $(uname -m)" > /args
FROM scratch
COPY --from=build /args /args
`
	host := cache.FormatPlatform(cache.HostPlatform())
	arm64, _ := cache.ParsePlatform("linux/arm64")
	armv7, _ := cache.ParsePlatform("linux/arm/v7")
	r := e.mustBuild(df, Options{Platforms: []ocispec.Platform{arm64, armv7}, Tags: []string{"cross:1"}})
	idx, images, err := e.store.Index(r.id)
	if err != nil || len(idx.Manifests) != 2 || len(images) != 2 {
		t.Fatalf("build of two platforms: %s is not an index of two: %+v, %v", r.id, idx, err)
	}
	uname := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[cache.HostPlatform().Architecture]
	for i, want := range []string{
		"linux/arm64 linux arm64 [] " + host + " linux " + cache.HostPlatform().Architecture + " " + uname + "\n",
		"linux/arm/v7 linux arm [v7] " + host + " linux " + cache.HostPlatform().Architecture + " " + uname + "\n",
	} {
		img := e.image(images[i].Image)
		if p := idx.Manifests[i].Platform; p == nil || cache.FormatPlatform(*p) != cache.FormatPlatform(img.Platform) {
			t.Errorf("manifest %d: platform %v, its config says %v", i, p, img.Platform)
		}
		if got := e.imageFiles(images[i].Image)["/args"]; got != want {
			t.Errorf("image %d: /args = %q, want %q", i, got, want)
		}
	}
	if got := e.image(images[1].Image).Platform; got.Architecture != "arm" || got.Variant != "v7" {
		t.Errorf("arm/v7 image's config platform: %+v", got)
	}
	if id, isIndex, err := e.store.ResolveTarget("cross:1"); err != nil || id != r.id || !isIndex {
		t.Errorf("the index is tagged: %s, %v", id, err)
	}

	again := e.mustBuild(df, Options{Platforms: []ocispec.Platform{arm64, armv7}})
	if again.id != r.id || cachedChanges(again.progress) != 4 {
		t.Errorf("rebuild: index %s (first %s)\n%s", again.id, r.id, again.progress)
	}

	one := e.mustBuild(df, Options{Platforms: []ocispec.Platform{arm64}})
	if e.store.IsIndex(one.id) || e.image(one.id).Architecture != "arm64" || one.id != images[0].Image {
		t.Errorf("one platform: %s, want the arm64 image of the index %s", one.id, images[0].Image)
	}

	bad := e.build("FROM --platform=windows/amd64 localhost/bb:latest\n", Options{})
	if bad.err == nil || !strings.HasPrefix(bad.err.Error(), "Dockerfile:1: FROM --platform=windows/amd64: platform \"windows/amd64\": kiln builds and runs linux images only") {
		t.Errorf("FROM --platform=windows/amd64: %v", bad.err)
	}
}

// cachedChanges counts the RUN and COPY steps the plain progress says were
// cached: "#4 [linux/arm64] [2/3] RUN …" then "#4 CACHED".
func cachedChanges(plain string) int {
	names := map[string]string{}
	n := 0
	for _, line := range strings.Split(plain, "\n") {
		id, rest, _ := strings.Cut(line, " ")
		if rest == "CACHED" && (strings.Contains(names[id], "] RUN ") || strings.Contains(names[id], "] COPY ")) {
			n++
		} else if _, ok := names[id]; !ok {
			names[id] = rest
		}
	}
	return n
}
