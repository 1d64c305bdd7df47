package builder

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/cache"
)

// workdir sets the working directory and creates it, owned by the current
// USER as BuildKit does, when the image lacks it.
func (b *build) workdir(ctx context.Context, st *stage, c *instructions.WorkdirCommand) (hit bool, err error) {
	dir := resolveWorkdir(st.img.Config.WorkingDir, c.Path)
	st.img.Config.WorkingDir = dir
	if b.dry {
		return false, nil
	}
	createdBy := "WORKDIR " + dir
	key := stepKey(st.cacheKey, struct {
		Op, Dir, User string
		Epoch         *time.Time
	}{"WORKDIR", dir, st.img.Config.User, st.epoch})
	return b.step(ctx, st, stepSpec{createdBy: createdBy, key: key, inputs: cache.StepInputs{Instruction: createdBy},
		make: func() (cache.Layer, bool, error) {
			// As BuildKit, WORKDIR makes a layer — without files when the
			// directory exists — except for "/".
			l, created, err := b.changeLayer(ctx, st, func(r *rootfs) (bool, error) {
				if dir == "/" {
					return false, nil
				}
				owner := ids{}
				if u := st.img.Config.User; u != "" {
					var err error
					if owner, err = resolveUserGroup(u, r.Open); err != nil {
						return false, err
					}
				}
				_, err := r.MkdirAll(dir, 0o755, owner)
				return err == nil, err
			})
			if err != nil {
				return l, false, fmt.Errorf("WORKDIR %s: %w", c.Path, err)
			}
			return l, created, nil
		}})
}
