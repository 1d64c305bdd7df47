package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/imageview"
)

// ciFlags are dive's CI gate options, on `kiln layers --ci` and
// `kiln build --check-layers`.
type ciFlags struct {
	enabled bool
	rules   imageview.Rules
	config  string
}

var ciThresholdFlags = []string{"lowest-efficiency", "highest-wasted-bytes", "highest-user-wasted-percent", "ci-config"}

// add registers the gate's flag (name: ci or check-layers) and the
// thresholds.
func (c *ciFlags) add(f *pflag.FlagSet, name string) {
	usage := "check the image against dive's CI rules; exit 1 with one line per broken rule"
	if name != "ci" {
		usage = "after the build, check the image against dive's CI rules (as kiln layers --ci); exit 1 with one line per broken rule"
	}
	f.BoolVar(&c.enabled, name, false, usage)
	d := imageview.DefaultRules
	f.StringVar(&c.rules.LowestEfficiency, "lowest-efficiency", d.LowestEfficiency, "CI rule: the lowest efficiency allowed (0-1, or disabled)")
	f.StringVar(&c.rules.HighestWastedBytes, "highest-wasted-bytes", d.HighestWastedBytes, "CI rule: the most wasted bytes allowed (20MB, 1GiB, or disabled)")
	f.StringVar(&c.rules.HighestUserWastedPercent, "highest-user-wasted-percent", d.HighestUserWastedPercent, "CI rule: the highest ratio of wasted bytes to the user layers' size (0-1, or disabled)")
	f.StringVar(&c.config, "ci-config", ".dive-ci", "CI rules file (dive's YAML), read when present; flags override it")
	if name == "ci" {
		// dive's own spellings work too: --lowestEfficiency, ...
		f.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
			switch n {
			case "lowestEfficiency":
				n = "lowest-efficiency"
			case "highestWastedBytes":
				n = "highest-wasted-bytes"
			case "highestUserWastedPercent":
				n = "highest-user-wasted-percent"
			}
			return pflag.NormalizedName(n)
		})
	}
}

// addToBuild adds --check-layers and the thresholds to kiln build, which
// refuses thresholds without --check-layers before it builds.
func (c *ciFlags) addToBuild(cmd *cobra.Command) {
	c.add(cmd.Flags(), "check-layers")
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if !c.enabled && c.anyThreshold(cmd) {
			return fmt.Errorf("--lowest-efficiency, --highest-wasted-bytes, --highest-user-wasted-percent and --ci-config need --check-layers")
		}
		if c.enabled {
			if _, err := c.resolve(cmd); err != nil {
				return err
			}
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

func (c *ciFlags) anyThreshold(cmd *cobra.Command) bool {
	for _, n := range ciThresholdFlags {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// resolve merges the rules: dive's defaults, then the config file, then
// the flags given.
func (c *ciFlags) resolve(cmd *cobra.Command) (imageview.Rules, error) {
	r, _, err := imageview.ReadRules(c.config, imageview.DefaultRules)
	if err != nil {
		return r, fmt.Errorf("--ci-config: %w", err)
	}
	fl := cmd.Flags()
	if fl.Changed("lowest-efficiency") {
		r.LowestEfficiency = c.rules.LowestEfficiency
	}
	if fl.Changed("highest-wasted-bytes") {
		r.HighestWastedBytes = c.rules.HighestWastedBytes
	}
	if fl.Changed("highest-user-wasted-percent") {
		r.HighestUserWastedPercent = c.rules.HighestUserWastedPercent
	}
	return r, r.Validate()
}

// gate evaluates the rules on a and prints the result: one line per broken
// rule (then exit status 1) or one line saying it passed.
func (c *ciFlags) gate(cmd *cobra.Command, w io.Writer, a *imageview.Analysis, jsonOut bool) error {
	rules, err := c.resolve(cmd)
	if err != nil {
		return err
	}
	res, err := rules.Evaluate(a)
	if err != nil {
		return err
	}
	passed := imageview.Passed(res)
	if jsonOut {
		if err := printJSON(w, struct {
			Passed bool                   `json:"passed"`
			Rules  []imageview.RuleResult `json:"rules"`
		}{passed, res}); err != nil {
			return err
		}
	} else if passed {
		var parts []string
		for _, r := range res {
			parts = append(parts, fmt.Sprintf("%s %s (%s %s)", r.Rule, r.Value, r.Status, r.Threshold))
		}
		fmt.Fprintf(w, "PASS %s: %s\n", shortID(a.Image, false), strings.Join(parts, ", "))
	} else {
		for _, r := range res {
			if r.Status == "fail" {
				fmt.Fprintf(w, "FAIL %s %s: %s\n", shortID(a.Image, false), r.Rule, r.Message)
			}
		}
	}
	if !passed {
		return exitError(1)
	}
	return nil
}

// checkLayersAfterBuild runs the gate on a built image (kiln build
// --check-layers), printing to stderr.
func (c *ciFlags) checkLayersAfterBuild(cmd *cobra.Command, s *cache.Store, id digest.Digest) error {
	if !c.enabled {
		return nil
	}
	img, _, err := s.Image(id)
	if err != nil {
		return err
	}
	a, err := imageview.Analyze(s, id, img)
	if err != nil {
		return err
	}
	return c.gate(cmd, os.Stderr, a, false)
}
