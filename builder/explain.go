package builder

import (
	"fmt"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/cache"
)

// explainMiss writes, for --explain-cache, why a step missed the cache: it
// compares the step with the most recently used record that had the same
// parent and the same instruction.
// files is the file list of a COPY (nil for other steps).
func (b *build) explainMiss(st *stage, in cache.StepInputs, files fileListing) {
	w := b.opts.ExplainCache
	if w == nil {
		return
	}
	fmt.Fprintf(w, "%s: cache miss: %s\n", st.stepText, b.missReason(st, in, files))
}

func (b *build) missReason(st *stage, in cache.StepInputs, files fileListing) string {
	switch {
	case b.opts.NoCache:
		return "--no-cache"
	case b.noCacheStage(st):
		return "--no-cache-filter " + st.name
	}
	recs, err := b.store.CacheRecords()
	if err != nil {
		return "cannot read the build cache: " + err.Error()
	}
	op := firstWord(in.Instruction)
	var prev *cache.CachedStep
	for i := range recs {
		if recs[i].Parent == st.cacheKey && firstWord(recs[i].Inputs.Instruction) == op {
			prev = &recs[i]
			break // most recently used first
		}
	}
	if prev == nil {
		if st.cacheKey == st.baseKey && st.baseName != "" {
			for _, r := range recs {
				if name, id, ok := strings.Cut(r.Inputs.Base, "="); ok && name == st.baseName && digest.Digest(id) != st.baseKey {
					return fmt.Sprintf("base image %s changed (%s → %s)", st.baseName, shortDigest(digest.Digest(id)), shortDigest(st.baseKey))
				}
			}
		}
		for _, r := range recs {
			if r.Parent == st.cacheKey {
				return "no earlier build ran this step here"
			}
		}
		if st.cacheKey == st.baseKey {
			return "no earlier build of this stage on this base image"
		}
		return "an earlier step changed"
	}
	var why []string
	if prev.Inputs.Instruction != in.Instruction {
		why = append(why, fmt.Sprintf("instruction changed (was %q)", prev.Inputs.Instruction))
	}
	why = append(why, diffMaps("build arg", prev.Inputs.Args, in.Args)...)
	why = append(why, diffMaps("env", envMap(prev.Inputs.Env), envMap(in.Env))...)
	if prev.Inputs.Files != in.Files {
		why = append(why, b.diffFiles(prev.Inputs.Files, files)...)
	}
	if len(why) == 0 {
		return "the step's inputs changed" // e.g. USER, WORKDIR or SOURCE_DATE_EPOCH
	}
	return strings.Join(why, "; ")
}

func (b *build) diffFiles(old digest.Digest, listing fileListing) []string {
	before, err := b.store.CacheFiles(old)
	if err != nil || listing == nil {
		return []string{"source files changed"}
	}
	after := listing.entries()
	var out []string
	for _, k := range sortedKeys(after) {
		if v, ok := before[k]; !ok {
			out = append(out, "file "+k+" added")
		} else if v != after[k] {
			out = append(out, "file "+k+" changed")
		}
	}
	for _, k := range sortedKeys(before) {
		if _, ok := after[k]; !ok {
			out = append(out, "file "+k+" removed")
		}
	}
	const most = 10
	if len(out) > most {
		out = append(out[:most], fmt.Sprintf("and %d more files", len(out)-most))
	}
	return out
}

// diffMaps names the keys whose values differ between two maps.
func diffMaps(what string, old, cur map[string]string) []string {
	var out []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		o, hadOld := old[k]
		c, hasCur := cur[k]
		switch {
		case !hadOld:
			out = append(out, fmt.Sprintf("%s %s added (%q)", what, k, c))
		case !hasCur:
			out = append(out, fmt.Sprintf("%s %s removed", what, k))
		case o != c:
			out = append(out, fmt.Sprintf("%s %s changed (%q → %q)", what, k, o, c))
		}
	}
	return out
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

func shortDigest(d digest.Digest) string {
	if len(d.Encoded()) >= 12 {
		return d.Encoded()[:12]
	}
	return string(d)
}
