package pveschema

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	integerRE = regexp.MustCompile(`^[+-]?\d+$`)
	numberRE  = regexp.MustCompile(`^[+-]?(?:\d+\.\d*|\d*\.\d+|\d+)(?:[eE][+-]?\d+)?$`)
)

// parseBoolean is pve-common's parse_boolean: the spellings pct and qm
// accept for a boolean.
func parseBoolean(v string) (string, bool) {
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true":
		return "1", true
	case "0", "off", "no", "false":
		return "0", true
	}
	return v, false
}

// check is PVE::JSONSchema's check_prop for a value given as a string:
// the first failing check adds the error for path.
func (p *Prop) check(path, v string, errs map[string]string) {
	if p.Alias != "" {
		return
	}
	switch p.Type {
	case "boolean":
		if _, ok := parseBoolean(v); !ok {
			errs[path] = fmt.Sprintf("type check ('boolean') failed - got '%s'", v)
			return
		}
	case "integer":
		if !integerRE.MatchString(v) {
			errs[path] = fmt.Sprintf("type check ('integer') failed - got '%s'", v)
			return
		}
	case "number":
		if !numberRE.MatchString(v) {
			errs[path] = fmt.Sprintf("type check ('number') failed - got '%s'", v)
			return
		}
	}
	switch {
	case p.Keys != nil:
		if msg, sub := parsePropertyString(p.Keys, v, path); msg != "" {
			errs[path] = "invalid format - " + msg
			maps.Copy(errs, sub)
			return
		}
	case p.Format != "":
		if err := CheckFormat(p.Format, v); err != nil {
			errs[path] = "invalid format - " + err.Error()
			if fe, ok := err.(*formatError); ok {
				for k, m := range fe.sub {
					errs[path+"."+k] = m
				}
			}
			return
		}
	}
	if p.pattern != nil && !p.pattern.MatchString(v) {
		errs[path] = "value does not match the regex pattern"
		return
	}
	if p.MaxLength != nil && utf8.RuneCountInString(v) > *p.MaxLength {
		errs[path] = fmt.Sprintf("value may only be %d characters long", *p.MaxLength)
		return
	}
	if p.MinLength != nil && utf8.RuneCountInString(v) < *p.MinLength {
		errs[path] = fmt.Sprintf("value must be at least %d characters long", *p.MinLength)
		return
	}
	if numberRE.MatchString(v) {
		f, _ := strconv.ParseFloat(v, 64)
		if p.Maximum != nil && f > float64(*p.Maximum) {
			errs[path] = "value must have a maximum value of " + fmtNum(*p.Maximum)
			return
		}
		if p.Minimum != nil && f < float64(*p.Minimum) {
			errs[path] = "value must have a minimum value of " + fmtNum(*p.Minimum)
			return
		}
	}
	if p.Enum != nil && !slices.Contains(p.Enum, v) {
		errs[path] = fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", v, strings.Join(p.Enum, ", "))
	}
}

func fmtNum(n number) string { return strconv.FormatFloat(float64(n), 'f', -1, 64) }

// parsePropertyString is parse_property_string followed by check_object: a
// message when the string cannot be split into known keys, or "format
// error" with one error per bad key ("net0.bridge").
func parsePropertyString(keys map[string]*Prop, data, path string) (string, map[string]string) {
	res := map[string]string{}
	defaultKey := ""
	for part := range strings.SplitSeq(data, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, hasEq := strings.Cut(part, "=")
		switch {
		case hasEq && k != "" && v != "":
			if _, dup := res[k]; dup {
				return "duplicate key in comma-separated list property: " + k, nil
			}
			schema := keys[k]
			if schema != nil && schema.Alias != "" {
				if schema.KeyAlias != "" {
					if _, dup := res[schema.KeyAlias]; dup {
						return fmt.Sprintf("key alias '%s' is already defined", schema.KeyAlias), nil
					}
					res[schema.KeyAlias] = k
				}
				k = schema.Alias
				schema = keys[k]
				if _, dup := res[k]; dup {
					return fmt.Sprintf("key '%s' is already defined (via alias)", k), nil
				}
			}
			if schema == nil {
				return "invalid key in comma-separated list property: " + k, nil
			}
			if schema.Type == "boolean" {
				v, _ = parseBoolean(v)
			}
			res[k] = v
		case !hasEq:
			if defaultKey != "" {
				return "duplicate key in comma-separated list property: " + defaultKey, nil
			}
			for _, name := range slices.Sorted(maps.Keys(keys)) {
				if keys[name].DefaultKey != 0 {
					defaultKey = name
					break
				}
			}
			if defaultKey == "" {
				return "value without key, but schema does not define a default key", nil
			}
			if _, dup := res[defaultKey]; dup {
				return "duplicate key in comma-separated list property: " + defaultKey, nil
			}
			if keys[defaultKey].Type == "boolean" {
				part, _ = parseBoolean(part)
			}
			res[defaultKey] = part
		default:
			return "missing key in comma-separated list property", nil
		}
	}
	errs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		schema := keys[k]
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		v, ok := res[k]
		if !ok {
			if schema.Optional == 0 && schema.Alias == "" && schema.KeyAlias == "" {
				errs[sub] = "property is missing and it is not optional"
			}
			continue
		}
		if schema.Alias == "" && schema.Type == "" && schema.KeyAlias != "" {
			continue // the model of a NIC, kept under its keyAlias
		}
		schema.check(sub, v, errs)
	}
	if len(errs) > 0 {
		return "format error", errs
	}
	return "", nil
}

// formatError is a named format's failure; sub holds per-key errors of a
// property-string format.
type formatError struct {
	msg string
	sub map[string]string
}

func (e *formatError) Error() string { return e.msg }

func ferr(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...)}
}

// CheckFormat checks value against a named format of pve-common's
// JSONSchema.pm (or one registered by pve-container, qemu-server or
// pve-storage), with the -list and -opt variants. Unknown formats accept
// every value.
func CheckFormat(format, value string) error {
	name, kind := format, ""
	if n, ok := strings.CutSuffix(format, "-list"); ok && formats[n] != nil {
		name, kind = n, "list"
	} else if n, ok := strings.CutSuffix(format, "-opt"); ok && formats[n] != nil {
		name, kind = n, "opt"
	}
	if name == "pve-qm-ipconfig" {
		if msg, sub := parsePropertyString(ipconfigKeys, value, ""); msg != "" {
			return &formatError{msg: msg, sub: sub}
		}
		return nil
	}
	fn := formats[name]
	if fn == nil {
		return nil
	}
	switch kind {
	case "list":
		for _, v := range splitList(value) {
			if err := fn(v); err != nil {
				return err
			}
		}
		return nil
	case "opt":
		if value == "" {
			return nil
		}
	}
	return fn(value)
}

// splitList is PVE::Tools::split_list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

var (
	configIDRE = regexp.MustCompile(`^(?i:[a-z][a-z0-9_-]+)$`)
	idRE       = regexp.MustCompile(`^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$`)
	bridgeRE   = regexp.MustCompile(`^[-_.\w\d]+$`)
	vmidRE     = regexp.MustCompile(`^[1-9][0-9]{2,8}$`)
	nodeRE     = regexp.MustCompile(`^(?i:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)$`)
	macRE      = regexp.MustCompile(`^(?i:[a-f0-9][02468ace](?::[a-f0-9]{2}){5})$`)
	dnsRE      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?$`)
	sizeRE     = regexp.MustCompile(`^\d+(?:\.\d+)?(?:[KMGT](?:iB)?)?$`)
	startupRE  = regexp.MustCompile(`^(?:(?:order=)?\d+|up=\d+|down=\d+)$`)
	tagRE      = regexp.MustCompile(`^(?i:[a-z0-9_][a-z0-9_\-+.]*)$`)
	poolRE     = regexp.MustCompile(`^[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+){0,2}$`)
	urlencRE   = regexp.MustCompile(`^[-%a-zA-Z0-9_.!~*'()]*$`)
	volumeRE   = regexp.MustCompile(`^(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):.+$`)
	llIfaceRE  = regexp.MustCompile(`^(?i:fe80:[^%]*)%[A-Za-z0-9_.\-]+$`)
	digitsRE   = regexp.MustCompile(`^\d+$`)
	mpBadRE    = regexp.MustCompile(`(?:^|/)\.\.?(?:/|$)`)
)

// formats are the string formats this package implements, by name.
var formats map[string]func(string) error

func init() {
	formats = map[string]func(string) error{
		"pve-configid": func(v string) error {
			if !configIDRE.MatchString(v) {
				return ferr("invalid configuration ID '%s'", v)
			}
			return nil
		},
		"pve-storage-id": func(v string) error { return parseID(v, "storage") },
		"pve-bridge-id": func(v string) error {
			if !bridgeRE.MatchString(v) {
				return ferr("invalid bridge ID '%s'", v)
			}
			return nil
		},
		"pve-vmid": func(v string) error {
			if !vmidRE.MatchString(v) {
				return ferr("value does not look like a valid VM ID")
			}
			return nil
		},
		"pve-node": func(v string) error {
			if !nodeRE.MatchString(v) {
				return ferr("value does not look like a valid node name")
			}
			return nil
		},
		"mac-addr": func(v string) error {
			if !macRE.MatchString(v) {
				return ferr("value does not look like a valid unicast MAC address")
			}
			return nil
		},
		"ipv4": func(v string) error {
			if !isIPv4(v) {
				return ferr("value does not look like a valid IPv4 address")
			}
			return nil
		},
		"ipv6": func(v string) error {
			if !isIPv6(v) {
				return ferr("value does not look like a valid IPv6 address")
			}
			return nil
		},
		"ip": func(v string) error {
			if !isIPv4(v) && !isIPv6(v) {
				return ferr("value does not look like a valid IP address")
			}
			return nil
		},
		"CIDRv4": func(v string) error {
			if !isCIDR(v, 4) {
				return ferr("value does not look like a valid IPv4 CIDR network")
			}
			return nil
		},
		"CIDRv6": func(v string) error {
			if !isCIDR(v, 6) {
				return ferr("value does not look like a valid IPv6 CIDR network")
			}
			return nil
		},
		"CIDR": func(v string) error {
			if !isCIDR(v, 4) && !isCIDR(v, 6) {
				return ferr("value does not look like a valid CIDR network")
			}
			return nil
		},
		"pve-ipv4-config": func(v string) error {
			if v != "dhcp" && v != "manual" && !isCIDR(v, 4) {
				return ferr("value does not look like a valid ipv4 network configuration")
			}
			return nil
		},
		"pve-ipv6-config": func(v string) error {
			if v != "auto" && v != "dhcp" && v != "manual" && !isCIDR(v, 6) {
				return ferr("value does not look like a valid ipv6 network configuration")
			}
			return nil
		},
		"dns-name": func(v string) error {
			if !dnsRE.MatchString(v) {
				return ferr("value does not look like a valid DNS name")
			}
			return nil
		},
		"disk-size": func(v string) error {
			if !sizeRE.MatchString(v) {
				return ferr("value does not look like a valid disk size: %s", v)
			}
			return nil
		},
		"pve-startup-order": func(v string) error {
			ok := false
			for p := range strings.SplitSeq(v, ",") {
				if strings.TrimSpace(p) == "" {
					continue
				}
				if !startupRE.MatchString(p) {
					ok = false
					break
				}
				ok = true
			}
			if !ok {
				return ferr("unable to parse startup options")
			}
			return nil
		},
		"pve-tag": func(v string) error {
			if !tagRE.MatchString(v) {
				return ferr("invalid characters in tag")
			}
			return nil
		},
		"pve-poolid": func(v string) error {
			if !poolRE.MatchString(v) {
				return ferr("invalid pool ID '%s'", v)
			}
			return nil
		},
		"urlencoded": func(v string) error {
			if !urlencRE.MatchString(v) {
				return ferr("invalid urlencoded string: %s", v)
			}
			return nil
		},
		"address": func(v string) error {
			if !isIPv4(v) && !isIPv6(v) && !dnsRE.MatchString(v) {
				return ferr("value does not look like a valid address: %s", v)
			}
			return nil
		},
		"lxc-ip-with-ll-iface": func(v string) error {
			if !isIPv4(v) && !isIPv6(v) && !(llIfaceRE.MatchString(v) && isIPv6(v[:strings.IndexByte(v, '%')])) {
				return ferr("value does not look like a valid IP address")
			}
			return nil
		},
		"pve-volume-id": func(v string) error {
			if !volumeRE.MatchString(v) {
				return ferr("unable to parse volume ID '%s'", v)
			}
			return nil
		},
		"pve-volume-id-or-absolute-path": func(v string) error {
			if !volumeRE.MatchString(v) && !strings.HasPrefix(v, "/") {
				return ferr("unable to parse volume ID '%s'", v)
			}
			return nil
		},
		"pve-volume-id-or-qm-path": func(v string) error {
			if v != "none" && v != "cdrom" && !volumeRE.MatchString(v) && !strings.HasPrefix(v, "/") {
				return ferr("unable to parse volume ID '%s'", v)
			}
			return nil
		},
		"pve-lxc-mp-string": func(v string) error {
			if mpBadRE.MatchString(v) {
				return ferr("%s contains illegal character sequences", v)
			}
			return nil
		},
	}
	// Lists whose registered names differ from their entries' format.
	formats["pve-tag-list"] = func(v string) error {
		for t := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
			if err := formats["pve-tag"](t); err != nil {
				return err
			}
		}
		return nil
	}
	formats["address-list"] = func(v string) error {
		for _, a := range splitList(v) {
			if err := formats["address"](a); err != nil {
				return err
			}
		}
		return nil
	}
}

// ipconfigKeys is qemu-server's pve-qm-ipconfig format.
var ipconfigKeys = map[string]*Prop{
	"ip":  {Type: "string", Format: "pve-ipv4-config", Optional: 1},
	"gw":  {Type: "string", Format: "ipv4", Optional: 1},
	"ip6": {Type: "string", Format: "pve-ipv6-config", Optional: 1},
	"gw6": {Type: "string", Format: "ipv6", Optional: 1},
}

func parseID(v, typ string) error {
	if len(v) < 2 {
		return ferr("%s ID '%s' cannot be shorter than 2 characters", typ, v)
	}
	if !idRE.MatchString(v) {
		return ferr("%s ID '%s' contains illegal characters", typ, v)
	}
	return nil
}

// isIPv4 is pve-common's IPV4RE: four decimal octets without leading zeros.
func isIPv4(v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is4() && a.String() == v
}

// isIPv6 is IPV6RE: any IPv6 spelling, without a zone.
func isIPv6(v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is6() && a.Zone() == "" && !strings.Contains(v, "%")
}

// isCIDR is pve_verify_cidrv4/6: an address and a prefix length above 7.
func isCIDR(v string, family int) bool {
	addr, bits, ok := strings.Cut(v, "/")
	if !ok || !digitsRE.MatchString(bits) {
		return false
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n <= 7 {
		return false
	}
	if family == 4 {
		return isIPv4(addr) && n <= 32
	}
	return isIPv6(addr) && n <= 128
}
