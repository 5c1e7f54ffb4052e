package pvefirewall

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Parse reads a guest's .fw file as pve-firewall does: [OPTIONS] (only
// enable matters to phoenix) and [RULES]; comment lines are skipped, and
// other sections (aliases, ipsets) are left out of the result. owned
// reports whether phoenix wrote the file (its first line is Marker). A
// rule Proxmox would not parse, or one phoenix cannot represent (a
// disabled rule, a macro, a log level), is an error naming its line.
func Parse(data []byte) (fw api.Firewall, owned bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	section, n := "", 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 && line == Marker {
			owned = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			head, _, _ := strings.Cut(strings.Trim(line, "[]"), " ")
			section = strings.ToLower(head)
			continue
		}
		switch section {
		case "options":
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return fw, owned, fmt.Errorf("line %d: %q is not an option", n, line)
			}
			if strings.EqualFold(strings.TrimSpace(k), "enable") {
				fw.Enabled = strings.TrimSpace(v) == "1"
			}
		case "rules":
			r, err := ParseRule(line)
			if err != nil {
				return fw, owned, fmt.Errorf("line %d: %w", n, err)
			}
			fw.Rules = append(fw.Rules, r)
		}
	}
	return fw, owned, sc.Err()
}

// ParseRule parses one [RULES] line after pve-firewall's parse_fw_rule and
// checks it with Validate.
func ParseRule(line string) (api.FirewallRule, error) {
	var r api.FirewallRule
	if body, comment, ok := strings.Cut(line, "#"); ok {
		line, r.Comment = body, strings.TrimSpace(comment)
	}
	if strings.HasPrefix(line, "|") {
		return r, fmt.Errorf("disabled rule %q", line)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return r, fmt.Errorf("unable to parse rule: %q", line)
	}
	r.Type, r.Action = strings.ToLower(f[0]), f[1]
	if strings.Contains(r.Action, "(") {
		return r, fmt.Errorf("macro %q", r.Action)
	}
	opts := f[2:]
	for len(opts) > 0 {
		if len(opts) < 2 {
			return r, fmt.Errorf("unable to parse rule parameters: %q", strings.Join(opts, " "))
		}
		k, v := strings.TrimLeft(opts[0], "-"), opts[1]
		switch k {
		case "i":
			r.Iface = v
		case "p", "proto":
			r.Proto = v
		case "dport":
			r.Dport = v
		case "sport":
			r.Sport = v
		case "source":
			r.Source = v
		case "dest":
			r.Dest = v
		default:
			return r, fmt.Errorf("unable to parse rule parameters: %q", strings.Join(opts, " "))
		}
		opts = opts[2:]
	}
	if errs := Validate(r); len(errs) > 0 {
		return r, fmt.Errorf("rule %q: %v", line, errs[0])
	}
	return r, nil
}
