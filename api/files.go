package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// pending is one guest as found in a file, on its way to becoming a Guest.
// The expensive parts (schema check, typed decode, hash) run in parallel.
type pending struct {
	name string // the guest as problems name it: the key, or the vmid
	own  json.RawMessage
	g    *Guest
	ps   problems
	bad  bool
}

func (c *Config) loadLXC(ps *problems, path string) int {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		ps.add(path, "", "", "read: %v", err)
		return 1
	}
	c.LXCPath = path
	top, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return 1
	}
	// Check the file's shape with the guests left out; each guest is
	// checked on its own below, in parallel.
	shallow := shallowCopy(top)
	guestsRaw := bytes.TrimSpace(top["lxc_configs"])
	if len(guestsRaw) > 0 && guestsRaw[0] == '{' {
		shallow["lxc_configs"] = json.RawMessage("{}")
	}
	validateShallow(ps, path, schemaLXC, shallow)
	if len(guestsRaw) == 0 || guestsRaw[0] != '{' {
		return 1
	}
	entries, dups := objectEntries(guestsRaw)
	for _, key := range dups {
		ps.add(path, key, "", "ID %s is used twice in lxc_configs", key)
	}
	var work []*pending
	for _, e := range entries {
		id, err := ParseID(e.key)
		if err != nil {
			ps.add(path, e.key, "lxc_configs", "key %q is not a valid guest ID (want a number from %d to %d)", e.key, MinID, MaxID)
			continue
		}
		work = append(work, &pending{name: e.key, own: e.raw, g: &Guest{ID: id, Kind: KindLXC, File: path, Raw: e.raw}})
	}
	c.finish(ps, path, guestSchemaLXC, work, false)
	return 1
}

func (c *Config) loadVM(ps *problems, path string) int {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		ps.add(path, "", "", "read: %v", err)
		return 1
	}
	c.VMPath = path
	top, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return 1
	}
	shallow := shallowCopy(top)
	vmsRaw := bytes.TrimSpace(top["vms"])
	if len(vmsRaw) > 0 && vmsRaw[0] == '[' {
		shallow["vms"] = json.RawMessage("[]")
	}
	before := len(*ps)
	validateShallow(ps, path, schemaVM, shallow)
	defaultsBad := false
	for _, p := range (*ps)[before:] {
		if p.Guest == "vm_defaults" {
			defaultsBad = true
		}
	}
	if len(vmsRaw) == 0 || vmsRaw[0] != '[' {
		return 1
	}
	var defaults map[string]json.RawMessage
	_ = json.Unmarshal(top["vm_defaults"], &defaults)
	var vms []json.RawMessage
	_ = json.Unmarshal(vmsRaw, &vms)
	var work []*pending
	for i, own := range vms {
		var m map[string]json.RawMessage
		if json.Unmarshal(own, &m) != nil {
			work = append(work, &pending{name: "vms[" + strconv.Itoa(i) + "]", own: own})
			continue
		}
		name := "vms[" + strconv.Itoa(i) + "]"
		if v, ok := m["vmid"]; ok {
			name = string(bytes.Trim(v, `"`))
		}
		eff := make(map[string]json.RawMessage, len(defaults)+len(m))
		for k, v := range defaults {
			eff[k] = v
		}
		for k, v := range m {
			eff[k] = v
		}
		raw, _ := json.Marshal(eff)
		p := &pending{name: name, own: own}
		if id, err := ParseID(name); err == nil {
			p.g = &Guest{ID: id, Kind: KindVM, File: path, Raw: raw}
		}
		work = append(work, p)
	}
	c.finish(ps, path, guestSchemaVM, work, defaultsBad)
	return 1
}

// finish checks each guest against its schema, decodes it and hashes it,
// in parallel, then records the guests in file order.
func (c *Config) finish(ps *problems, path string, schema schemaName, work []*pending, defaultsBad bool) {
	all, err := schemas()
	if err != nil {
		ps.add(path, "", "", "built-in schema: %v", err)
		return
	}
	sch := all[schema]
	var wg sync.WaitGroup
	next := make(chan *pending)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				p.check(path, sch)
			}
		}()
	}
	for _, p := range work {
		next <- p
	}
	close(next)
	wg.Wait()
	for _, p := range work {
		*ps = append(*ps, p.ps...)
		if p.g == nil {
			if !p.bad {
				ps.add(path, p.name, "vmid", "%q is not a valid guest ID (want a number from %d to %d)", p.name, MinID, MaxID)
			}
			continue
		}
		if defaultsBad {
			p.bad = true
		}
		c.addGuest(ps, p.g, p.bad)
	}
}

func (p *pending) check(path string, sch schemaChecker) {
	doc, err := decodeAny(p.own)
	if err != nil {
		p.ps.add(path, p.name, "", "%v", err)
		p.bad = true
		return
	}
	if n := schemaProblems(&p.ps, path, sch, doc, func(loc []string) (string, int) { return p.name, 0 }); n > 0 {
		p.bad = true
		return
	}
	if p.g == nil {
		return
	}
	if err := json.Unmarshal(p.g.Raw, &p.g.Spec); err != nil {
		p.ps.add(path, p.name, "", "%v", err)
		p.bad = true
		return
	}
	p.g.Hash = SpecHash(p.g.Raw)
}

// addGuest records a guest. A guest whose checks failed is still recorded,
// so that references to it do not also show up as unknown guests.
func (c *Config) addGuest(ps *problems, g *Guest, bad bool) {
	if prev, ok := c.Guests[g.ID]; ok {
		if prev.File == g.File {
			ps.add(g.File, g.ID.String(), "", "ID %s is used twice in this file", g.ID)
		} else {
			ps.add(g.File, g.ID.String(), "", "ID %s is already used by the %s guest in %s; LXC and VM share one ID space", g.ID, prev.Kind, prev.File)
		}
		return
	}
	c.Guests[g.ID] = g
	if bad {
		g.Hash = "invalid"
	}
}

func shallowCopy(top map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(top))
	for k, v := range top {
		out[k] = v
	}
	return out
}

type entry struct {
	key string
	raw json.RawMessage
}

// objectEntries splits a valid JSON object into its members in file order
// and lists keys given twice, which a map decode would silently collapse.
// It scans bytes rather than using json.Decoder tokens: at 10,000 guests
// that is the difference between milliseconds and a tenth of a second.
func objectEntries(obj []byte) (entries []entry, dups []string) {
	seen := map[string]bool{}
	i := skipSpace(obj, 1) // past '{'
	for i < len(obj) && obj[i] != '}' {
		kEnd := skipString(obj, i)
		var key string
		_ = json.Unmarshal(obj[i:kEnd], &key)
		i = skipSpace(obj, kEnd)
		i = skipSpace(obj, i+1) // past ':'
		vEnd := skipValue(obj, i)
		if seen[key] {
			dups = append(dups, key)
		} else {
			seen[key] = true
			entries = append(entries, entry{key, obj[i:vEnd]})
		}
		i = skipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return entries, dups
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		return j
	}
}
