package pve

import (
	"strconv"
	"strings"
)

// cmdline is a parsed invocation: positional arguments, --options (in the
// order given) and what follows "--".
type cmdline struct {
	pos   []string
	opts  map[string]string
	order []string
	extra []string
	dash  bool // "--" was given
}

func (c *cmdline) has(k string) bool { _, ok := c.opts[k]; return ok }

// flag reports a boolean option, given as --k, --k 1 or --k 0.
func (c *cmdline) flag(k string) bool {
	v, ok := c.opts[k]
	return ok && boolValue(v)
}

func boolValue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

func isBoolLiteral(v string) bool {
	switch strings.ToLower(v) {
	case "0", "1", "yes", "no", "true", "false", "on", "off":
		return true
	}
	return false
}

// flags are the boolean options that may be given without a value (the
// PVE command-line handler accepts --full as --full 1).
var flags = map[string]bool{
	"full": true, "purge": true, "force": true, "forceStop": true, "skiplock": true,
	"pass-stdin": true, "synchronous": true, "unique": true, "start": true,
	"destroy-unreferenced-disks": true, "keep-env": true, "debug": true,
	"overrule-shutdown": true, "current": true, "verbose": true,
	"ignore-unpack-errors": true, "restore": true, "live-restore": true,
}

// parseArgs parses args like the PVE command-line handler: options anywhere,
// --opt value or --opt=value, a value taken as is even when it starts with
// "-", and only known options.
func parseArgs(args []string, known func(string) bool) (*cmdline, error) {
	c := &cmdline{opts: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			c.dash = true
			c.extra = args[i+1:]
			break
		}
		name, ok := strings.CutPrefix(a, "--")
		if !ok || name == "" {
			c.pos = append(c.pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !known(name) {
			return nil, fail("Unknown option: %s\n400 unable to parse option", name)
		}
		switch {
		case hasValue:
		case flags[name]:
			value = "1"
			if i+1 < len(args) && isBoolLiteral(args[i+1]) {
				i++
				value = args[i]
			}
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			return nil, fail("Option %s requires an argument\n400 unable to parse option", name)
		}
		if _, dup := c.opts[name]; !dup {
			c.order = append(c.order, name)
		}
		c.opts[name] = value
	}
	return c, nil
}

func oneOf(names ...string) func(string) bool {
	return func(k string) bool {
		for _, n := range names {
			if n == k {
				return true
			}
		}
		return false
	}
}

// parseID checks a guest ID as pct and qm do.
func parseID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 999999999 || strings.HasPrefix(s, "0") || strings.HasPrefix(s, "+") {
		return 0, fail("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID")
	}
	return n, nil
}
