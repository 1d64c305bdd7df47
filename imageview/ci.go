package imageview

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"go.yaml.in/yaml/v3"
)

// Rules are dive's CI rules. Each holds dive's text form: a number, a size
// (HighestWastedBytes: 20MB, 1.5GiB) or "disabled".
type Rules struct {
	LowestEfficiency         string `yaml:"lowestEfficiency"`
	HighestWastedBytes       string `yaml:"highestWastedBytes"`
	HighestUserWastedPercent string `yaml:"highestUserWastedPercent"`
}

// DefaultRules are dive's defaults.
var DefaultRules = Rules{LowestEfficiency: "0.9", HighestWastedBytes: "disabled", HighestUserWastedPercent: "0.1"}

// ReadRules reads a dive CI file (.dive-ci: YAML with a rules: map of the
// three keys) over base: the keys it sets replace base's. A missing file
// returns base and false.
func ReadRules(file string, base Rules) (Rules, bool, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return base, false, nil
	}
	if err != nil {
		return base, false, err
	}
	var doc struct {
		Rules map[string]any `yaml:"rules"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return base, false, fmt.Errorf("%s: %w", file, err)
	}
	r := base
	for k, v := range doc.Rules {
		s := strings.TrimSpace(fmt.Sprint(v))
		switch k {
		case "lowestEfficiency":
			r.LowestEfficiency = s
		case "highestWastedBytes":
			r.HighestWastedBytes = s
		case "highestUserWastedPercent":
			r.HighestUserWastedPercent = s
		default:
			return base, false, fmt.Errorf("%s: unknown rule %q (known: lowestEfficiency, highestWastedBytes, highestUserWastedPercent)", file, k)
		}
	}
	return r, true, r.Validate()
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	Rule      string `json:"rule"`
	Threshold string `json:"threshold"`
	Value     string `json:"value"`
	Status    string `json:"status"` // pass, fail or skip (disabled)
	// Message says why a rule failed.
	Message string `json:"message,omitempty"`
}

// Validate refuses values the rules cannot use.
func (r Rules) Validate() error {
	for _, c := range []struct{ name, v string }{
		{"lowestEfficiency", r.LowestEfficiency}, {"highestUserWastedPercent", r.HighestUserWastedPercent},
	} {
		if c.v == "disabled" {
			continue
		}
		if f, err := strconv.ParseFloat(c.v, 64); err != nil || f < 0 {
			return fmt.Errorf("rule %s: %q is neither a non-negative number nor \"disabled\"", c.name, c.v)
		}
	}
	if _, err := parseBytes(r.HighestWastedBytes); err != nil {
		return fmt.Errorf("rule highestWastedBytes: %w", err)
	}
	return nil
}

func parseBytes(v string) (int64, error) {
	if v == "disabled" {
		return -1, nil
	}
	var n int64
	var err error
	if strings.ContainsAny(v, "iI") { // KiB, MiB: binary as dive's go-humanize
		n, err = units.RAMInBytes(v)
	} else {
		n, err = units.FromHumanSize(v)
	}
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a size (20MB, 1.5GiB) nor \"disabled\"", v)
	}
	return n, nil
}

// Evaluate checks the analysis against the rules (Validate first).
func (r Rules) Evaluate(a *Analysis) ([]RuleResult, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var out []RuleResult
	eff := RuleResult{Rule: "lowestEfficiency", Threshold: r.LowestEfficiency, Value: fmt.Sprintf("%.4f", a.Efficiency), Status: "skip"}
	if r.LowestEfficiency != "disabled" {
		min, _ := strconv.ParseFloat(r.LowestEfficiency, 64)
		eff.Status = "pass"
		if a.Efficiency < min {
			eff.Status, eff.Message = "fail", fmt.Sprintf("image efficiency is too low (efficiency=%.4f < threshold=%s)", a.Efficiency, r.LowestEfficiency)
		}
	}
	out = append(out, eff)
	wb := RuleResult{Rule: "highestWastedBytes", Threshold: r.HighestWastedBytes, Value: strconv.FormatInt(a.WastedBytes, 10), Status: "skip"}
	if max, _ := parseBytes(r.HighestWastedBytes); max >= 0 {
		wb.Status = "pass"
		if a.WastedBytes > max {
			wb.Status, wb.Message = "fail", fmt.Sprintf("too many bytes wasted (wasted-bytes=%d > threshold=%d)", a.WastedBytes, max)
		}
	}
	out = append(out, wb)
	uw := RuleResult{Rule: "highestUserWastedPercent", Threshold: r.HighestUserWastedPercent, Value: fmt.Sprintf("%.4f", a.UserWastedPercent), Status: "skip"}
	if r.HighestUserWastedPercent != "disabled" {
		max, _ := strconv.ParseFloat(r.HighestUserWastedPercent, 64)
		uw.Status = "pass"
		if a.UserWastedPercent > max {
			uw.Status, uw.Message = "fail", fmt.Sprintf("too many bytes wasted, relative to the user bytes added (%%-user-wasted-bytes=%.4f > threshold=%s)", a.UserWastedPercent, r.HighestUserWastedPercent)
		}
	}
	out = append(out, uw)
	return out, nil
}

// Passed reports whether no rule failed.
func Passed(results []RuleResult) bool {
	for _, r := range results {
		if r.Status == "fail" {
			return false
		}
	}
	return true
}
