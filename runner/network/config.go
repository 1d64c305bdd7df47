package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// DefaultRoot is the store root whose default bridge is named kiln0.
const DefaultRoot = "/var/lib/kiln"

// Config is the networking part of kiln's config file.
type Config struct {
	Bridge              string `json:"bridge,omitempty"`
	BIP                 string `json:"bip,omitempty"`
	MTU                 int    `json:"mtu,omitempty"`
	DefaultAddressPools []Pool `json:"default-address-pools,omitempty"`
	Firewall            string `json:"firewall,omitempty"`
	// TeardownDelay is how long a network stays up once its last
	// container has left (default DefaultTeardownDelay; 0: at once).
	TeardownDelay *Duration `json:"teardown-delay,omitempty"`
}

// DefaultTeardownDelay keeps a network up between containers run back to
// back, so that starting one usually costs no firewall change.
const DefaultTeardownDelay = 2 * time.Second

// Duration is a duration in the config file: a Go duration string ("2s",
// "500ms") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*d = Duration(v * float64(time.Second))
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("duration %q: %w", v, err)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("duration %s: want a string such as \"2s\" or a number of seconds", b)
	}
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// teardownDelay is TeardownDelay, filled in by withDefaults.
func (c Config) teardownDelay() time.Duration {
	if c.TeardownDelay == nil {
		return DefaultTeardownDelay
	}
	return time.Duration(*c.TeardownDelay)
}

// Pool is an address range cut into subnets of Size bits of prefix.
type Pool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// DefaultPools are Docker's default address pools: 172.17-31.0.0/16, then
// /20s of 192.168.0.0/16.
var DefaultPools = []Pool{{Base: "172.17.0.0/16", Size: 16}, {Base: "172.18.0.0/15", Size: 16},
	{Base: "172.20.0.0/14", Size: 16}, {Base: "172.24.0.0/13", Size: 16}, {Base: "192.168.0.0/16", Size: 20}}

// ConfigPaths are where LoadConfig looks, first found wins.
func ConfigPaths(root string) []string {
	return []string{filepath.Join(root, "config.json"), "/etc/kiln/config.json"}
}

// LoadConfig reads the first config file of ConfigPaths (none is fine) and
// fills in the defaults for root.
func LoadConfig(root string) (Config, error) {
	var c Config
	for _, p := range ConfigPaths(root) {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return c, fmt.Errorf("read config %s: %w", p, err)
		}
		break
	}
	return c.withDefaults(root)
}

// withDefaults validates c and fills in what it leaves out.
func (c Config) withDefaults(root string) (Config, error) {
	if c.Bridge == "" {
		c.Bridge = DefaultBridgeName(root)
	}
	if err := validBridgeName(c.Bridge); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.BIP != "" {
		p, err := netip.ParsePrefix(c.BIP)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return c, fmt.Errorf("config: bip %q: want an IPv4 address with a prefix length of at most 30", c.BIP)
		}
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return c, fmt.Errorf("config: mtu %d out of range", c.MTU)
	}
	if len(c.DefaultAddressPools) == 0 {
		c.DefaultAddressPools = DefaultPools
	}
	for _, p := range c.DefaultAddressPools {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil || !base.Addr().Is4() || p.Size < base.Bits() || p.Size > 30 {
			return c, fmt.Errorf("config: address pool %s/%d: invalid", p.Base, p.Size)
		}
	}
	if c.TeardownDelay == nil {
		d := Duration(DefaultTeardownDelay)
		c.TeardownDelay = &d
	}
	if *c.TeardownDelay < 0 {
		return c, fmt.Errorf("config: teardown-delay %s is negative", time.Duration(*c.TeardownDelay))
	}
	switch c.Firewall {
	case "", "iptables", "nftables":
	default:
		return c, fmt.Errorf("config: firewall %q: want iptables or nftables", c.Firewall)
	}
	return c, nil
}

// DefaultBridgeName is the default network's bridge device for a store
// root: kiln0 for DefaultRoot, kiln-<hash> for any other.
func DefaultBridgeName(root string) string {
	if filepath.Clean(root) == DefaultRoot {
		return "kiln0"
	}
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return "kiln-" + hex.EncodeToString(sum[:4])
}

// BridgePrefix starts the name of every bridge kiln makes: isolation rules
// match it.
const BridgePrefix = "kiln"

func validBridgeName(name string) error {
	if len(name) > 15 || len(name) <= len(BridgePrefix) || name[:len(BridgePrefix)] != BridgePrefix {
		return fmt.Errorf("bridge name %q: want %s followed by at most %d characters", name, BridgePrefix, 15-len(BridgePrefix))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("bridge name %q: only a-z, 0-9, - and _ are allowed", name)
		}
	}
	return nil
}
