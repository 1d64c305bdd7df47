package network

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// firewall installs a network's rules while it has endpoints.
type firewall interface {
	up(n *Network) error
	down(n *Network) error
}

// firewall picks the configured backend, else iptables when the host has
// it (its FORWARD chain may drop by default, as Docker's does: only rules
// inside it let traffic through), else nftables.
func (s *Store) firewall() (firewall, error) {
	want := s.cfg.Firewall
	if want == "" || want == "iptables" {
		if p, err := lookBin("iptables"); err == nil {
			return iptables{bin: p}, nil
		}
		if want == "iptables" {
			return nil, fmt.Errorf("firewall: iptables is configured but not installed")
		}
	}
	p, err := lookBin("nft")
	if err != nil {
		return nil, fmt.Errorf("firewall: neither iptables nor nft is installed")
	}
	return nftables{bin: p}, nil
}

// lookBin finds a firewall tool in PATH or the system directories (a
// container monitor runs with an empty environment).
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"} {
		if p, err := exec.LookPath(dir + "/" + name); err == nil {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// kiln's own chains, jumped to from the built-in ones.
const (
	forwardChain = "KILN-FORWARD"
	natChain     = "KILN-POSTROUTING"
)

// filterRules are a network's rules in KILN-FORWARD: traffic within the
// bridge passes, traffic to another kiln bridge is dropped (isolation), the
// rest goes out and its replies come back (none of it for an internal network).
func filterRules(n *Network) [][]string {
	b := n.Bridge
	rules := [][]string{
		{"-i", b, "-o", b, "-j", "ACCEPT"},
		{"-i", b, "-o", BridgePrefix + "+", "-j", "DROP"},
	}
	if n.Internal {
		return append(rules, []string{"-i", b, "-j", "DROP"}, []string{"-o", b, "-j", "DROP"})
	}
	return append(rules,
		[]string{"-i", b, "-j", "ACCEPT"},
		[]string{"-o", b, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"})
}

// natRules masquerade what leaves the network's subnet for elsewhere.
func natRules(n *Network) [][]string {
	if n.Internal {
		return nil
	}
	return [][]string{{"-s", n.Subnet.String(), "!", "-o", n.Bridge, "-j", "MASQUERADE"}}
}

type iptables struct{ bin string }

func (t iptables) run(args ...string) error {
	cmd := exec.Command(t.bin, append([]string{"-w"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (t iptables) up(n *Network) error {
	for _, c := range []struct {
		table, parent, chain string
		rules                [][]string
	}{{"filter", "FORWARD", forwardChain, filterRules(n)}, {"nat", "POSTROUTING", natChain, natRules(n)}} {
		if len(c.rules) == 0 {
			continue
		}
		if t.run("-t", c.table, "-n", "-L", c.chain) != nil {
			if err := t.run("-t", c.table, "-N", c.chain); err != nil {
				return err
			}
		}
		if t.run(append([]string{"-t", c.table, "-C", c.parent}, "-j", c.chain)...) != nil {
			if err := t.run("-t", c.table, "-I", c.parent, "1", "-j", c.chain); err != nil {
				return err
			}
		}
		for _, r := range c.rules {
			if t.run(append([]string{"-t", c.table, "-C", c.chain}, r...)...) == nil {
				continue
			}
			if err := t.run(append([]string{"-t", c.table, "-A", c.chain}, r...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// down deletes the network's rules, and kiln's chains once they are empty.
func (t iptables) down(n *Network) error {
	for _, c := range []struct {
		table, parent, chain string
		rules                [][]string
	}{{"filter", "FORWARD", forwardChain, filterRules(n)}, {"nat", "POSTROUTING", natChain, natRules(n)}} {
		if t.run("-t", c.table, "-n", "-L", c.chain) != nil {
			continue // no chain, no rules
		}
		for _, r := range c.rules {
			for t.run(append([]string{"-t", c.table, "-D", c.chain}, r...)...) == nil {
			}
		}
		out, err := exec.Command(t.bin, "-w", "-t", c.table, "-S", c.chain).Output()
		if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			continue // other networks' rules remain
		}
		for t.run("-t", c.table, "-D", c.parent, "-j", c.chain) == nil {
		}
		if err := t.run("-t", c.table, "-X", c.chain); err != nil {
			return err
		}
	}
	return nil
}

// nftables keeps each network's rules in a table of its own, "ip
// kiln-<bridge>", so that bringing a network down is deleting its table.
type nftables struct{ bin string }

func (t nftables) table(n *Network) string { return "kiln-" + n.Bridge }

func (t nftables) script(n *Network) string {
	b := n.Bridge
	var fwd string
	if n.Internal {
		fwd = fmt.Sprintf(`iifname %q drop
		oifname %q drop`, b, b)
	} else {
		fwd = fmt.Sprintf(`iifname %q oifname %q accept
		iifname %q oifname "%s*" drop
		iifname %q accept
		oifname %q ct state related,established accept`, b, b, b, BridgePrefix, b, b)
	}
	s := fmt.Sprintf(`table ip %s {
	chain forward {
		type filter hook forward priority filter - 1; policy accept;
		%s
	}
`, t.table(n), fwd)
	if !n.Internal {
		s += fmt.Sprintf(`	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %s oifname != %q masquerade
	}
`, n.Subnet, b)
	}
	return s + "}\n"
}

func (t nftables) run(stdin string, args ...string) error {
	cmd := exec.Command(t.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (t nftables) up(n *Network) error {
	// Delete then create in one transaction: the table ends up exactly so.
	script := fmt.Sprintf("table ip %s\ndelete table ip %s\n%s", t.table(n), t.table(n), t.script(n))
	return t.run(script, "-f", "-")
}

func (t nftables) down(n *Network) error {
	if t.run("", "list", "table", "ip", t.table(n)) != nil {
		return nil
	}
	return t.run("", "delete", "table", "ip", t.table(n))
}
