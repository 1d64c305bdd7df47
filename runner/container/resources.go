package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// parseCPUList parses a cpuset list ("0-2,4").
func parseCPUList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid value %q for cpuset cpus", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid value %q for cpuset cpus", s)
			}
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

// ValidateCpuset checks a --cpuset-cpus value against the host's online
// CPUs, as docker does.
func ValidateCpuset(s string) error {
	want, err := parseCPUList(s)
	if err != nil {
		return err
	}
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil // cannot tell: the kernel will
	}
	online, err := parseCPUList(string(data))
	if err != nil {
		return nil
	}
	for c := range want {
		if !online[c] {
			return fmt.Errorf("requested CPUs are not available - requested %s, available: %s", s, strings.TrimSpace(string(data)))
		}
	}
	return nil
}

// ParseMemorySwap parses --memory-swap: "-1" (unlimited swap) or a size,
// which must be at least memory.
func ParseMemorySwap(s string, memory int64) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	n, err := ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", s, err)
	}
	if memory == 0 {
		return 0, fmt.Errorf("you should always set the memory limit when using memoryswap limit, see usage")
	}
	if n < memory {
		return 0, fmt.Errorf("minimum memoryswap limit should be larger than memory limit, see usage")
	}
	return n, nil
}
