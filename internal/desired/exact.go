package desired

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Exact decoding. encoding/json matches keys case-insensitively, keeps the
// last of a key given twice and turns 2048.0 into an error about Go types;
// the schema check sees none of that. These checks run on a guest's own
// bytes before it is decoded, so that what phoenix acts on, what the spec
// hash covers and what the scripts are handed are the same values.

// The guest's field names come from fields_gen.go's tables (specFields,
// networkConfigFields, ...), and so does intFields, the integer members by
// dotted path below the guest (list items without an index).

// exactGuest checks one guest object's bytes: keys given twice at any depth,
// keys that differ from a field only by case (an error: encoding/json would
// take them) or by a typo (a warning), integers written with a fraction or
// exponent, and strings holding a line break, CR, NUL or ESC. It reports
// whether an error was found, and returns the members of own it checked,
// for a caller that would list them again.
func exactGuest(ps *problems, file, guest string, own []byte) (bad bool, members []entry) {
	before := errCount(*ps)
	var at fieldPath
	entries := scanValue(ps, file, guest, &at, own)
	if len(own) == 0 || own[0] != '{' {
		return errCount(*ps) > before, nil
	}
	for _, e := range entries {
		key, v := e.key, e.raw
		checkKey(ps, file, guest, "", key, specFields.names)
		if intFields[key] {
			checkInt(ps, file, guest, key, v)
		}
		switch key {
		case "network_config":
			exactObject(ps, file, guest, key, v, networkConfigFields.names)
		case "health_check":
			exactObject(ps, file, guest, key, v, healthCheckFields.names)
		case "volumes", "zfs_volumes":
			exactObjects(ps, file, guest, key, v, volumeFields.names)
		case "mount_points":
			exactObjects(ps, file, guest, key, v, mountPointFields.names)
		case "id_maps":
			exactObjects(ps, file, guest, key, v, idMapFields.names)
		case "firewall":
			exactObject(ps, file, guest, key, v, firewallFields.names)
			if len(v) > 0 && v[0] == '{' {
				members, _ := objectEntries(v)
				for _, m := range members {
					if m.key == "rules" {
						exactObjects(ps, file, guest, key+".rules", m.raw, firewallRuleFields.names)
					}
				}
			}
		}
	}
	return errCount(*ps) > before, entries
}

// exactObjects checks each object of the list v, named field[i].
func exactObjects(ps *problems, file, guest, field string, v []byte, known []string) {
	i := 0
	(&fastDec{b: v}).array(func(item []byte) bool {
		exactObject(ps, file, guest, field+"["+itoa(i)+"]", item, known)
		i++
		return true
	})
}

func exactObject(ps *problems, file, guest, field string, v []byte, known []string) {
	base := field
	if i := strings.IndexByte(base, '['); i >= 0 {
		base = base[:i]
	}
	if len(v) == 0 || v[0] != '{' {
		return
	}
	entries, _ := objectEntries(v)
	for _, e := range entries {
		checkKey(ps, file, guest, field+".", e.key, known)
		if intFields[base+"."+e.key] {
			checkInt(ps, file, guest, field+"."+e.key, e.raw)
		}
	}
}

func errCount(ps problems) int {
	n := 0
	for _, p := range ps {
		if !p.Warning {
			n++
		}
	}
	return n
}

// checkKey reports a key that is not one of known but close to one.
func checkKey(ps *problems, file, guest, prefix, key string, known []string) {
	// Known keys are nearly every key: find them before any distance is
	// computed, which would otherwise dominate loading a large lab.
	if slices.Contains(known, key) {
		return
	}
	for _, k := range known {
		if strings.EqualFold(k, key) {
			ps.add(file, guest, prefix+key, "keys are case-sensitive: %q is not %q (rename it)", key, k)
			return
		}
	}
	if best := nearMiss(key, known); best != "" {
		ps.warn(file, guest, prefix+key, "unknown field %q is ignored; did you mean %q?", key, best)
	}
}

// nearMisses remembers nearMiss's answers: a lab repeats the same few
// kept fields (docker_stacks, ...) on every guest. Bounded, so that a file
// of random keys cannot grow it without end.
var (
	nearMisses    sync.Map // nearMissKey -> string
	nearMissCount atomic.Int32
)

type nearMissKey struct {
	known *string
	key   string
}

// nearMiss is the known name key is a likely typo of, or "".
func nearMiss(key string, known []string) string {
	if len(known) == 0 {
		return ""
	}
	k := nearMissKey{&known[0], key}
	if v, ok := nearMisses.Load(k); ok {
		return v.(string)
	}
	best, bestD := "", 3
	for _, name := range known {
		if d := editDistance(key, name, bestD); d < bestD {
			best, bestD = name, d
		}
	}
	// One edit for short names, two for longer ones: "cores" vs "core",
	// "memroy_mb" vs "memory_mb"; "node" vs "name" is two and not a typo.
	limit := 1
	if len(key) > 6 {
		limit = 2
	}
	if bestD > limit {
		best = ""
	}
	if nearMissCount.Add(1) <= 4096 {
		nearMisses.Store(k, best)
	}
	return best
}

// editDistance is the optimal string alignment distance (a swap of two
// neighbours counts as one edit), or max when it is at least max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= max {
			return max
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max)
}

// checkInt refuses an integer written as 2048.0 or 2e3, or one that does
// not fit in 64 bits: the schema counts it as an integer, Go's decoder does
// not, and neither says so plainly.
func checkInt(ps *problems, file, guest, field string, v []byte) {
	if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return // not a number: the schema reports the type
	}
	if bytes.ContainsAny(v, ".eE") {
		ps.add(file, guest, field, "%s is not written as a whole number; write it without a fraction or exponent (like 2048)", v)
		return
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
		ps.add(file, guest, field, "%s is out of range (want a whole number from %d to %d)", v, math.MinInt64, math.MaxInt64)
	}
}

// scanValue walks a valid JSON value: a key given twice in one object and
// a string (key or value) holding a character that would end or corrupt a
// line of a Proxmox config file or a terminal are errors.
//
// For an object it returns the object's members (a key given twice once),
// so that a caller checking them need not list them again.
func scanValue(ps *problems, file, guest string, at *fieldPath, v []byte) []entry {
	if len(v) == 0 {
		return nil
	}
	switch v[0] {
	case '"':
		checkChars(ps, file, guest, at, v)
	case '{':
		entries, dups := objectEntries(v)
		for _, k := range dups {
			ps.add(file, guest, at.with(pathElem{key: k}), "key %q is given twice in one object; JSON readers disagree on which one counts, so keep one", k)
		}
		for _, e := range entries {
			if badChars(e.key) != "" {
				ps.add(file, guest, at.String(), "key %q contains %s; keys and values may not", e.key, badChars(e.key))
				continue
			}
			*at = append(*at, pathElem{key: e.key})
			scanValue(ps, file, guest, at, e.raw)
			*at = (*at)[:len(*at)-1]
		}
		return entries
	case '[':
		i := skipSpace(v, 1)
		for n := 0; i < len(v) && v[i] != ']'; n++ {
			end := skipValue(v, i)
			*at = append(*at, pathElem{item: true, index: n})
			scanValue(ps, file, guest, at, v[i:end])
			*at = (*at)[:len(*at)-1]
			i = skipSpace(v, end)
			if i < len(v) && v[i] == ',' {
				i = skipSpace(v, i+1)
			}
		}
	}
	return nil
}

// fieldPath names a value inside a guest (network_config.ip,
// volumes[1].size) as scanValue descends, one element per level, made a
// string only for a problem's message.
type fieldPath []pathElem

// pathElem is a member's key, or a list item's index.
type pathElem struct {
	key   string
	item  bool
	index int
}

func (p *fieldPath) String() string {
	s := ""
	for _, e := range *p {
		if e.item {
			s += "[" + itoa(e.index) + "]"
		} else {
			s = join(s, e.key)
		}
	}
	return s
}

// with is the path of a member or item below p.
func (p *fieldPath) with(e pathElem) string {
	q := append(fieldPath(nil), *p...)
	q = append(q, e)
	return q.String()
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func checkChars(ps *problems, file, guest string, at *fieldPath, raw []byte) {
	if plainASCII(raw[1 : len(raw)-1]) {
		return
	}
	s := string(raw[1 : len(raw)-1])
	if bytes.IndexByte(raw, '\\') >= 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return
		}
	}
	if what := badChars(s); what != "" {
		ps.add(file, guest, at.String(), "value contains %s; no value may hold a line break, CR, NUL or ESC", what)
	}
}

// badChars names the first character of s that must not reach a config
// line, a command's argv or a terminal, or returns "".
// plainASCII reports whether b holds printable ASCII only and no
// backslash: a JSON string of such bytes holds none of what badChars
// looks for, escaped or not (most values of a real file; this check
// costs no copy of the value).
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

func badChars(s string) string {
	for _, r := range s {
		switch r {
		case '\n':
			return "a line break"
		case '\r':
			return "a carriage return (CR)"
		case 0:
			return "a NUL byte"
		case 0x1b:
			return "an escape character (ESC)"
		case 0x85, 0x2028, 0x2029:
			return "a Unicode line separator"
		case utf8.RuneError:
			return "an invalid character"
		}
	}
	return ""
}

// encodingProblem names a BOM or UTF-16 at the start of a file, which JSON
// parsers report as a bad character without saying what is wrong.
func encodingProblem(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return "file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM"
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return "file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8"
	case len(data) >= 2 && (data[0] == 0 && data[1] != 0 || data[0] != 0 && data[1] == 0):
		return "file looks like UTF-16 (NUL bytes between the characters); save it as UTF-8"
	}
	return ""
}
