package builder

import (
	"archive/tar"
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// keysDockerfile has a step of every cached kind on scratch, whose key is
// the same on every machine: nothing in it depends on the host.
const keysDockerfile = `FROM scratch
WORKDIR /app
COPY a.txt ./
COPY --chmod=600 dir/ /d/
ADD b.tar /x/
ADD --chown=1:2 a.txt /y
ARG V=1
ENV E=2
WORKDIR /
RUN ["/bin/true"]
RUN --network=none <<EOT
true $V
EOT
`

// goldenKeys are the keys kiln gave the steps of keysDockerfile before the
// cached-step helper (commit 45dd7cf), in order, without and with
// SOURCE_DATE_EPOCH=1700000000: a store filled by an older kiln must still
// hit.
var goldenKeys = map[bool][]string{
	false: {
		"sha256:d360563a2b59c5aac3c15f13ca696ff6eabff742162dafa74adfd890e64beba7", // WORKDIR /app
		"sha256:acb68ddfe83bde18fb1061d7763c5b83f5bf12fcb2dc950c34b3dacf0991aed0", // COPY a.txt ./
		"sha256:0bbe56258b69db4345ac443e4830c6b1fc3c27b3c0a7fc896ce91c7b9b12a48b", // COPY --chmod=600 dir/ /d/
		"sha256:db7a98f03c1f84bdb2ad1ac8f9daaf1f7e1597b4fad040dd5355cc78285727ae", // ADD b.tar /x/
		"sha256:468040d4c9dbcdf4a6dc674bc763767f42f7a87aee5626fa5a8907c43fe112fe", // ADD --chown=1:2 a.txt /y
		"sha256:d2f98ab881200111901ab2c6644896252acf9c901b53b5a04abea4447e39ab6c", // WORKDIR /
		"sha256:7d18a100182e44b98a6411d87c5e48957b9ac42512bb9ef45e463e5212eb2c2e", // RUN ["/bin/true"]
		"sha256:959e035d5e3711e819c8189e55ba116db08ceb65e26417fea6c26a902c35c17d", // RUN --network=none <<EOT
	},
	true: {
		"sha256:b162ef96c80cc8923a9cdf96a3d8aa3a4de0866bb1cc50b34a893bdbea99b643",
		"sha256:bfa7c5bc15718eb2dd2bdd0f6b20380bb757102e3d08d06e496351856c71bae7",
		"sha256:8075d63b29053580d9d0776d0a8e439f6d11ccc4bc95147e5fbcde4255da8f3a",
		"sha256:408148dd7c14f2b173805922cb6793ac300971a2fc364b483d1ba5e80469996e",
		"sha256:5cdf8db384adebdcf50a1cbbf86642403c1ee7ca598ec079a6802064b539f69c",
		"sha256:20f10e840bddab51af7d2272cc6b7d9c1861e2c445e42ed0ae70082d9aa03fcd",
		"sha256:bf899457dff0713c55043393e7ff6814ce287fea461e4f99c709faf3d30d8d80",
	},
}

// keysContext writes the context of keysDockerfile: a.txt, dir/ and b.tar
// (a tar with fixed headers, so its digest is fixed too).
func keysContext(e *buildEnv) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct{ name, body string }{{"t/one", "1\n"}, {"t/two", "22\n"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}); err != nil {
			e.t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.write(map[string]string{"a.txt": "a\n", "dir/x": "x\n", "dir/sub/y": "y\n", "b.tar": tb.String()})
}

// cachedStepLine reports whether a Dockerfile line starts a step that goes
// through the build cache.
func cachedStepLine(l string) bool {
	for _, p := range []string{"WORKDIR ", "COPY ", "ADD ", "RUN "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// TestStepKeysUnchanged: every step kind keys as it did before, so caches
// made by an older kiln still hit. The steps before the RUNs are built on a
// cold store (a COPY then hashes its files while copying) and their records
// compared with the golden keys; the RUN steps (scratch has no shell to
// run) must then hit records stored under their golden keys, in a warm
// rebuild (where a COPY hashes its files before looking up) that hits every
// step.
func TestStepKeysUnchanged(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	for _, withEpoch := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "epoch"}[withEpoch], func(t *testing.T) {
			e := newBuildEnv(t)
			keysContext(e)
			opts := Options{}
			if withEpoch {
				opts.SourceDateEpoch = &epoch
			}
			golden := goldenKeys[withEpoch]
			// The Dockerfile up to the last step with a golden key, and
			// without its RUN steps.
			df, noRun, n := "", "", 0
			for _, l := range strings.SplitAfter(keysDockerfile, "\n") {
				if cachedStepLine(l) {
					if n == len(golden) {
						break
					}
					n++
				}
				df += l
				if !strings.Contains(df, "RUN ") {
					noRun = df
				}
			}
			e.mustBuild(noRun, opts)
			var got []string
			parent := digest.FromString("scratch")
			for {
				var next []cache.CachedStep
				for _, r := range e.records() {
					if r.Parent == parent {
						next = append(next, r)
					}
				}
				if len(next) != 1 {
					break
				}
				got = append(got, string(next[0].Key))
				parent = next[0].Key
			}
			runs := strings.Count(df, "\nRUN ")
			if len(got)+runs != len(golden) || !slices.Equal(got, golden[:len(got)]) {
				t.Fatalf("keys of the steps before RUN:\n got %q\nwant %q", got, golden)
			}
			for i := len(got); i < len(golden); i++ {
				rec := cache.CacheRecord{Key: digest.Digest(golden[i]), Parent: digest.Digest(golden[i-1]),
					Created: epoch, Inputs: cache.StepInputs{Instruction: "RUN"}}
				if err := e.store.PutCacheRecord(rec); err != nil {
					t.Fatal(err)
				}
			}
			r := e.mustBuild(df, opts)
			if cached := cachedSteps(r.progress); len(cached) != len(golden) {
				t.Errorf("warm build cached steps %v, want all %d steps with a key:\n%s", cached, len(golden), r.progress)
			}
			if strings.Contains(r.explain, "miss") {
				t.Errorf("warm build missed:\n%s", r.explain)
			}
		})
	}
}
