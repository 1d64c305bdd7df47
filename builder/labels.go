package builder

import (
	"fmt"
	"maps"
	"strings"

	"github.com/kiln-build/kiln/cache"
)

// applyLabels sets the build's --label values on the final image's config;
// they override the Dockerfile's LABELs of the same key, as in BuildKit.
func applyLabels(st *stage, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	if st.img.Config.Labels == nil {
		st.img.Config.Labels = map[string]string{}
	}
	maps.Copy(st.img.Config.Labels, labels)
}

// ParseLabels reads --label values: KEY=VALUE, or KEY for an empty value
// (as docker build).
func ParseLabels(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("label %q: want KEY=VALUE: %w", l, cache.ErrInvalid)
		}
		out[k] = v
	}
	return out, nil
}
