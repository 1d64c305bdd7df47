package network

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
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

// iptables changes kiln's chains in one iptables-restore transaction
// (--noflush: the host's other rules stay as they are), made from what one
// iptables-save shows: two processes where a command a rule took up to
// fifteen. Every bring-up and take-down holds the host lock, so nothing of
// kiln's changes in between; a transaction is all or nothing, and one that
// fails (someone else changed kiln's chains) is made again from a new save.
type iptables struct{ bin string }

// ipChain is kiln's chain in a table, the built-in chain that jumps to it,
// and a network's rules in it.
type ipChain struct {
	table, parent, chain string
	rules                [][]string
}

func ipChains(n *Network) []ipChain {
	return []ipChain{{"filter", "FORWARD", forwardChain, filterRules(n)}, {"nat", "POSTROUTING", natChain, natRules(n)}}
}

// ruleLine is a rule as iptables-save prints it and iptables-restore reads it.
func ruleLine(chain string, args ...string) string {
	return "-A " + chain + " " + strings.Join(args, " ")
}

// savedTable is a table as iptables-save shows it: its chains and rules.
type savedTable struct {
	chains map[string]bool
	rules  []string // "-A CHAIN ..." lines, in order
}

// parseSave reads iptables-save's output into its tables by name.
func parseSave(out string) map[string]*savedTable {
	tables := map[string]*savedTable{}
	var cur *savedTable
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			cur = &savedTable{chains: map[string]bool{}}
			tables[l[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(l, "-A "):
			cur.rules = append(cur.rules, l)
		}
	}
	return tables
}

// change runs the transaction that edit makes from the saved tables (lines
// by table; none, nothing to do).
func (t iptables) change(edit func(map[string]*savedTable) map[string][]string) error {
	var err error
	for try := 0; try < 2; try++ {
		var out []byte
		save := exec.Command(t.bin + "-save")
		var stderr bytes.Buffer
		save.Stderr = &stderr
		if out, err = save.Output(); err != nil {
			return fmt.Errorf("iptables-save: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		script := restoreScript(edit(parseSave(string(out))))
		if script == "" {
			return nil
		}
		restore := exec.Command(t.bin+"-restore", "-w", "--noflush")
		restore.Stdin = strings.NewReader(script)
		var msg bytes.Buffer
		restore.Stdout, restore.Stderr = &msg, &msg
		if err = restore.Run(); err == nil {
			return nil
		}
		err = fmt.Errorf("iptables-restore: %w: %s\n%s", err, strings.TrimSpace(msg.String()), script)
	}
	return err
}

// restoreScript is iptables-restore's input for lines by table.
func restoreScript(lines map[string][]string) string {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		if len(lines[table]) > 0 {
			fmt.Fprintf(&b, "*%s\n%s\nCOMMIT\n", table, strings.Join(lines[table], "\n"))
		}
	}
	return b.String()
}

func (t iptables) up(n *Network) error {
	return t.change(func(saved map[string]*savedTable) map[string][]string {
		lines := map[string][]string{}
		for _, c := range ipChains(n) {
			if len(c.rules) == 0 {
				continue
			}
			st := saved[c.table]
			if st == nil {
				st = &savedTable{}
			}
			var add []string
			// Declaring a chain that exists would flush it, other networks' rules with it.
			if !st.chains[c.chain] {
				add = append(add, ":"+c.chain+" - [0:0]")
			}
			if !slices.Contains(st.rules, ruleLine(c.parent, "-j", c.chain)) {
				add = append(add, "-I "+c.parent+" 1 -j "+c.chain)
			}
			for _, r := range c.rules {
				if l := ruleLine(c.chain, r...); !slices.Contains(st.rules, l) {
					add = append(add, l)
				}
			}
			lines[c.table] = add
		}
		return lines
	})
}

// down deletes the network's rules (every rule of kiln's chains that names
// its bridge: a bridge left by a kiln killed midway, or by another version,
// has them too, whatever they were), and kiln's chains once they are empty.
func (t iptables) down(n *Network) error {
	return t.change(func(saved map[string]*savedTable) map[string][]string {
		lines := map[string][]string{}
		for _, c := range ipChains(n) {
			st := saved[c.table]
			if st == nil || !st.chains[c.chain] {
				continue // no chain, no rules
			}
			var del []string
			others := false // other networks' rules remain
			for _, l := range st.rules {
				if strings.HasPrefix(l, "-A "+c.chain+" ") {
					if namesDevice(l, n.Bridge) {
						del = append(del, "-D"+l[2:])
					} else {
						others = true
					}
				}
			}
			if !others {
				for _, l := range st.rules {
					if l == ruleLine(c.parent, "-j", c.chain) {
						del = append(del, "-D"+l[2:])
					}
				}
				del = append(del, "-X "+c.chain)
			}
			lines[c.table] = del
		}
		return lines
	})
}

// namesDevice reports whether the rule line matches packets in or out of dev.
func namesDevice(line, dev string) bool {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if (f[i] == "-i" || f[i] == "-o") && f[i+1] == dev {
			return true
		}
	}
	return false
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
	// Create (if missing) then delete in one transaction: one process, and
	// no error when the table is already gone.
	return t.run(fmt.Sprintf("table ip %s\ndelete table ip %s\n", t.table(n), t.table(n)), "-f", "-")
}
