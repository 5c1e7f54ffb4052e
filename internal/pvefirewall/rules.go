package pvefirewall

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Marker is the first line of a .fw file phoenix wrote: pve-firewall skips
// comment lines, and a file rewritten by Proxmox (the GUI, pvesh) loses
// it, which hands the file back to whoever changed it.
const Marker = "# managed by phoenix: changes here are replaced on the next create or converge"

// Names of security groups, ipsets and aliases (pve-firewall's patterns).
var (
	nameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_]+$`)
	ifaceRE = regexp.MustCompile(`^net\d+$`)
)

const (
	maxGroupName = 18
	maxIPSetName = 64
	maxAliasName = 64
	maxAddress   = 512
	maxComment   = 512
	maxPortCount = 15
)

// protocols are the protocol names pve-firewall takes from /etc/protocols
// that phoenix accepts; numbers 0-255 are accepted too.
var protocols = map[string]bool{
	"tcp": true, "udp": true, "icmp": true, "icmpv6": true, "ipv6-icmp": true, "udplite": true, "sctp": true,
	"dccp": true, "gre": true, "esp": true, "ah": true, "igmp": true, "ipip": true, "ipv6": true, "ospf": true,
	"vrrp": true, "l2tp": true, "pim": true,
}

// withPorts are the protocols whose rules may name ports.
var withPorts = map[string]bool{"tcp": true, "6": true, "udp": true, "17": true, "udplite": true, "136": true,
	"dccp": true, "33": true, "sctp": true, "132": true}

// FieldError is a rule field Proxmox would refuse, or one that could
// smuggle another option or line into the .fw file.
type FieldError struct {
	Field, Msg string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks one rule as pve-firewall's verify_rule would for a
// guest (rule_env vm/ct), more strictly where that keeps the file safe:
// port names from /etc/services are not taken, only numbers and ranges.
func Validate(r api.FirewallRule) []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	typ := strings.ToLower(r.Type)
	switch typ {
	case "in", "out":
		if r.Action != "ACCEPT" && r.Action != "DROP" && r.Action != "REJECT" {
			bad("action", "%q: want ACCEPT, DROP or REJECT", r.Action)
		}
	case "group":
		if !nameRE.MatchString(r.Action) || len(r.Action) > maxGroupName {
			bad("action", "%q: a security group name is a letter, then letters, digits, - or _ (at most %d)", r.Action, maxGroupName)
		}
		for _, kv := range [][2]string{{"source", r.Source}, {"dest", r.Dest}, {"proto", r.Proto}, {"port", r.Port}, {"dport", r.Dport}, {"sport", r.Sport}} {
			if kv[1] != "" {
				bad(kv[0], "a group rule takes only action (the group), iface and comment")
			}
		}
	case "":
		bad("type", "missing: want in, out or group")
	default:
		bad("type", "%q: want in, out or group", r.Type)
	}
	if r.Iface != "" && !ifaceRE.MatchString(r.Iface) {
		bad("iface", "%q: want the guest's interface key, net0, net1, ...", r.Iface)
	}
	ipv := map[string]int{}
	for _, kv := range [][2]string{{"source", r.Source}, {"dest", r.Dest}} {
		f, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		n, err := checkAddress(v)
		if err != nil {
			bad(f, "%q: %v", v, err)
		}
		ipv[f] = n
	}
	if ipv["source"] != 0 && ipv["dest"] != 0 && ipv["source"] != ipv["dest"] {
		bad("dest", "mixes IPv4 and IPv6 with source %q", r.Source)
	}
	proto := strings.ToLower(r.Proto)
	if r.Proto != "" {
		if n, err := strconv.Atoi(r.Proto); err == nil {
			if n < 0 || n > 255 || strconv.Itoa(n) != r.Proto {
				bad("proto", "%q: a protocol number is 0-255", r.Proto)
			}
		} else if !protocols[r.Proto] {
			bad("proto", "%q: unknown protocol (tcp, udp, icmp, icmpv6, ... or a number)", r.Proto)
		}
	}
	if r.Port != "" && r.Dport != "" && r.Port != r.Dport {
		bad("port", "both port and dport; port is the old name of dport")
	}
	for _, kv := range [][2]string{{"port", r.Port}, {"dport", r.Dport}, {"sport", r.Sport}} {
		f, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		if err := checkPorts(v); err != nil {
			bad(f, "%q: %v", v, err)
		}
		if proto == "" {
			bad(f, "needs proto (tcp, udp, ...)")
		} else if !withPorts[proto] {
			bad(f, "protocol %q has no ports", r.Proto)
		}
	}
	if err := checkText(r.Comment, maxComment); err != nil {
		bad("comment", "%v", err)
	}
	return errs
}

// checkAddress checks a source or dest after pve-firewall's
// parse_address_list: +ipset, alias, an IP, a CIDR, a range a-b, or a
// list of IPs and CIDRs of one family. It returns the IP version, 0 for a
// name.
func checkAddress(s string) (int, error) {
	if len(s) > maxAddress {
		return 0, fmt.Errorf("longer than %d", maxAddress)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return 0, fmt.Errorf("holds a space or control character: give one address, CIDR, range, comma list (no spaces), +ipset or alias")
	}
	if set, ok := strings.CutPrefix(s, "+"); ok {
		for _, scope := range []string{"guest/", "dc/", "sdn/"} {
			set = strings.TrimPrefix(set, scope)
		}
		if !nameRE.MatchString(set) || len(set) > maxIPSetName {
			return 0, fmt.Errorf("an ipset is +name, a letter then letters, digits, - or _")
		}
		return 0, nil
	}
	if alias := strings.TrimPrefix(strings.TrimPrefix(s, "dc/"), "guest/"); nameRE.MatchString(alias) {
		if len(s) > maxAliasName {
			return 0, fmt.Errorf("alias longer than %d", maxAliasName)
		}
		return 0, nil
	}
	elems := strings.Split(s, ",")
	version, ranges := 0, 0
	for _, e := range elems {
		if e == "" {
			return 0, fmt.Errorf("empty element in the list")
		}
		v, isRange, err := checkIP(e)
		if err != nil {
			return 0, err
		}
		if isRange {
			ranges++
		}
		if version != 0 && v != version {
			return 0, fmt.Errorf("mixes IPv4 and IPv6")
		}
		version = v
	}
	if ranges > 0 && len(elems) > 1 {
		return 0, fmt.Errorf("a range cannot be part of a list")
	}
	return version, nil
}

func checkIP(s string) (version int, isRange bool, err error) {
	ver := func(a netip.Addr) int {
		if a.Is4() {
			return 4
		}
		return 6
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(from)
		b, err2 := netip.ParseAddr(to)
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" || a.Is4() != b.Is4() || b.Less(a) {
			return 0, true, fmt.Errorf("%q is not a range of addresses low-high", s)
		}
		return ver(a), true, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return 0, false, fmt.Errorf("%q is not an address or network (CIDR)", s)
		}
		return ver(p.Addr()), false, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return 0, false, fmt.Errorf("%q is not an address or network (CIDR)", s)
	}
	return ver(a), false, nil
}

// checkPorts checks a port list after parse_port_name_number_or_range:
// numbers and low:high ranges, comma-separated, at most 15 numbers.
func checkPorts(s string) error {
	count := 0
	for _, e := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(e, ":")
		a, err := port(lo)
		if err != nil {
			return err
		}
		count++
		if isRange {
			b, err := port(hi)
			if err != nil {
				return err
			}
			if a > b {
				return fmt.Errorf("backwards range %s, did you mean %s:%s?", e, hi, lo)
			}
			count++
		}
	}
	if count > maxPortCount {
		return fmt.Errorf("more than %d ports in the list (a range counts as 2)", maxPortCount)
	}
	return nil
}

func port(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number (0-65535) or range low:high", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range 0-65535", s)
	}
	return n, nil
}

// checkText refuses control characters (a newline would start a new
// line of the file) and overlong text.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("holds a control character or invalid UTF-8 (%U)", r)
		}
	}
	return nil
}

// dport is the rule's destination port: dport, or the old tool's port.
func dport(r api.FirewallRule) string {
	if r.Dport != "" {
		return r.Dport
	}
	return r.Port
}

// RuleLine is a rule as pve-firewall writes it in [RULES]:
// "IN ACCEPT -i net0 -source 10.0.0.0/24 -p tcp -dport 22 # comment".
// The rule must have passed Validate.
func RuleLine(r api.FirewallRule) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(r.Type) + " " + r.Action)
	if r.Iface != "" {
		b.WriteString(" -i " + r.Iface)
	}
	if strings.ToLower(r.Type) != "group" {
		for _, kv := range [][2]string{{"-source", r.Source}, {"-dest", r.Dest}, {"-p", strings.ToLower(r.Proto)}, {"-dport", dport(r)}, {"-sport", r.Sport}} {
			if kv[1] != "" {
				b.WriteString(" " + kv[0] + " " + kv[1])
			}
		}
	}
	if c := strings.TrimSpace(r.Comment); c != "" {
		b.WriteString(" # " + c)
	}
	return b.String()
}

// Format is the canonical text of a firewall: the options phoenix sets and
// the rules, as Proxmox's save_vmfw_conf lays them out. Two firewalls
// that filter alike have the same Format.
func Format(fw api.Firewall) string {
	var b strings.Builder
	b.WriteString("[OPTIONS]\n\nenable: " + boolNum(fw.Enabled) + "\n\n")
	if len(fw.Rules) > 0 {
		b.WriteString("[RULES]\n\n")
		for _, r := range fw.Rules {
			b.WriteString(RuleLine(r) + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// File is the .fw file phoenix writes: the Marker, then Format.
func File(fw api.Firewall) []byte { return []byte(Marker + "\n\n" + Format(fw)) }

// Summary is a short form of a Format text for diffs: on or off, the
// number of rules, and a digest telling two rule sets apart.
func Summary(text string) string {
	if text == "" {
		return "none"
	}
	fw, _, err := Parse([]byte(text))
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256([]byte(text))
	state := "off"
	if fw.Enabled {
		state = "on"
	}
	return fmt.Sprintf("%s, %d rules (%s)", state, len(fw.Rules), hex.EncodeToString(sum[:4]))
}

func boolNum(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
