package desired

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// pending is one guest as found in a file, on its way to becoming a Guest.
// The expensive parts (schema check, typed decode, hash) run in parallel.
type pending struct {
	name string // the guest as problems name it: the key, or the vmid
	own  json.RawMessage
	g    *api.Guest
	ps   problems
	bad  bool
	// fast: the guest may take the fast path (fastSpec); false when a VM's
	// own vmid is not a plain integer.
	fast bool
	// ownOnly: report the VM's own problems only, not those of decoding
	// it with vm_defaults applied. Set when vm_defaults has an error,
	// which is reported once, on vm_defaults, not again on every VM.
	ownOnly bool
}

func (c *loading) loadLXC(ps *problems, path string) int {
	return c.loadFile(ps, path, &c.LXCPath, c.parseLXC)
}

func (c *loading) parseLXC(ps *problems, path string, data []byte) {
	top, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return
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
		return
	}
	entries, dups := objectEntries(guestsRaw)
	for _, key := range dups {
		ps.add(path, key, "", "ID %s is used twice in lxc_configs", key)
	}
	var work []*pending
	for _, e := range entries {
		id, err := api.ParseID(e.key)
		if err != nil {
			ps.add(path, e.key, "lxc_configs", "key %q is not a valid guest ID (want a number from %d to %d)", e.key, api.MinID, api.MaxID)
			continue
		}
		work = append(work, &pending{name: e.key, own: e.raw, fast: true, g: &api.Guest{ID: id, Kind: api.KindLXC, File: path, Raw: e.raw}})
	}
	c.finish(ps, path, guestSchemaLXC, work, false)
}

func (c *loading) loadVM(ps *problems, path string) int {
	return c.loadFile(ps, path, &c.VMPath, c.parseVM)
}

func (c *loading) parseVM(ps *problems, path string, data []byte) {
	// From here: parseFile runs the exact checks of vm_defaults, and the
	// schema check below the rest.
	before := len(*ps)
	top, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return
	}
	shallow := shallowCopy(top)
	vmsRaw := bytes.TrimSpace(top["vms"])
	if len(vmsRaw) > 0 && vmsRaw[0] == '[' {
		shallow["vms"] = json.RawMessage("[]")
	}
	validateShallow(ps, path, schemaVM, shallow)
	defaultsBad := false
	for _, p := range (*ps)[before:] {
		if p.Guest == "vm_defaults" && !p.Warning {
			defaultsBad = true
		}
	}
	if len(vmsRaw) == 0 || vmsRaw[0] != '[' {
		return
	}
	var defaults map[string]json.RawMessage
	_ = json.Unmarshal(top["vm_defaults"], &defaults)
	var vms [][]byte
	(&fastDec{b: vmsRaw}).array(func(v []byte) bool { vms = append(vms, v); return true })
	var work []*pending
	for i, own := range vms {
		m, ok := rawMembers(own)
		if !ok {
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
		raw := marshalRawMap(eff)
		p := &pending{name: name, own: own, fast: allDigits(m["vmid"]), ownOnly: defaultsBad}
		if id, err := api.ParseID(name); err == nil {
			p.g = &api.Guest{ID: id, Kind: api.KindVM, File: path, Raw: raw}
		}
		work = append(work, p)
	}
	c.finish(ps, path, guestSchemaVM, work, defaultsBad)
}

// finish checks each guest against its schema, decodes it and hashes it,
// in parallel, then records the guests in file order.
func (c *loading) finish(ps *problems, path string, schema schemaName, work []*pending, defaultsBad bool) {
	all, err := schemas()
	if err != nil {
		ps.add(path, "", "", "built-in schema: %v", err)
		c.rec = nil
		return
	}
	sch := all[schema]
	todo := work
	if c.cache != nil {
		todo = nil
		for _, p := range work {
			if e := c.cache.lookup(path, schema, p); e != nil {
				c.cache.hits++
				c.used[e.key] = e
				c.fileEntries = append(c.fileEntries, e)
			} else {
				c.cache.misses++
				todo = append(todo, p)
			}
		}
	}
	if len(todo) < 64 {
		for _, p := range todo {
			p.check(path, sch)
		}
	} else {
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
		for _, p := range todo {
			next <- p
		}
		close(next)
		wg.Wait()
	}
	// With vm_defaults in error the VMs' checks stop at their own objects:
	// nothing to keep for a later load, which must check them in full once
	// vm_defaults is fixed.
	if c.cache != nil && !defaultsBad {
		for _, p := range todo {
			e := c.cache.entry(path, schema, p)
			c.used[e.key] = e
			c.fileEntries = append(c.fileEntries, e)
		}
	}
	if c.rec != nil {
		c.rec.pre = append(problems(nil), (*ps)[c.recFrom:]...)
		c.rec.finished = true
	}
	for _, p := range work {
		st := fileStep{ps: p.ps}
		if p.g == nil {
			if !p.bad {
				st.ps.add(path, p.name, "vmid", "%q is not a valid guest ID (want a number from %d to %d)", p.name, api.MinID, api.MaxID)
			}
		} else {
			st.g, st.bad = p.g, p.bad || defaultsBad
		}
		c.step(ps, st)
		if c.rec != nil {
			c.rec.steps = append(c.rec.steps, st)
		}
	}
}

// step records one guest of a file: the problems found in it, then the
// guest itself (which may find its ID taken by another).
func (c *loading) step(ps *problems, st fileStep) {
	*ps = append(*ps, st.ps...)
	if st.g != nil {
		c.addGuest(ps, st.g, st.bad)
	}
}

// loadFile reads one guest file and parses it with parse, which reports
// its problems and records its guests. Loading through a Cache, a file
// whose bytes did not change since the last load is not parsed again: its
// problems and guests are replayed (the guests themselves, which nothing
// changes after loading).
func (c *loading) loadFile(ps *problems, path string, setPath *string, parse func(*problems, string, []byte)) int {
	data, err := c.read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if c.ctx.Err() != nil {
		return 1
	}
	if err != nil {
		// Its guests are unknown, not absent: references to them are not
		// reported, and a controller must not take them for deleted.
		c.unreadable = true
		ps.add(path, "", "", "read: %v", err)
		return 1
	}
	*setPath = path
	if c.cache == nil {
		parse(ps, path, data)
		return 1
	}
	sum := sha256.Sum256(data)
	if m := c.cache.files[path]; m != nil && m.sum == sum {
		*ps = append(*ps, m.pre...)
		if m.unreadable {
			c.unreadable = true
		}
		for _, st := range m.steps {
			c.step(ps, st)
		}
		for _, e := range m.entries {
			c.used[e.key] = e
		}
		c.cache.hits += len(m.entries)
		c.usedFiles[path] = m
		return 1
	}
	wasUnreadable := c.unreadable
	c.rec, c.recFrom = &fileMemo{sum: sum}, len(*ps)
	parse(ps, path, data)
	if m := c.rec; m != nil {
		if !m.finished {
			m.pre = append(problems(nil), (*ps)[c.recFrom:]...)
		}
		m.unreadable = c.unreadable && !wasUnreadable
		m.entries = c.fileEntries
		c.usedFiles[path] = m
	}
	c.rec, c.fileEntries = nil, nil
	return 1
}

func (p *pending) check(path string, sch schemaChecker) {
	bad, own := exactGuest(&p.ps, path, p.name, p.own)
	if bad {
		p.bad = true
		return
	}
	// For a VM the fast path checks the effective object, vm_defaults
	// applied: it holds every member of the VM's own object unchanged, so
	// passing the strict check there passes the schema check of its own.
	if p.g != nil && p.fast {
		if fastSpec(p.g.Raw, &p.g.Spec) {
			if !sameBytes(p.g.Raw, p.own) {
				// A VM's effective object: other members than its own.
				own = nil
			}
			p.g.Hash = specHash(p.g.Raw, own)
			return
		}
		p.g.Spec = api.Spec{}
	}
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
	if p.g == nil || p.ownOnly {
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
func (c *loading) addGuest(ps *problems, g *api.Guest, bad bool) {
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
	var seen map[string]bool // only for big objects; small ones scan entries
	// About one member per 32 bytes: a guest's object grows its list once
	// or not at all rather than five times.
	entries = make([]entry, 0, min(1+len(obj)/32, 64))
	i := skipSpace(obj, 1) // past '{'
	for i < len(obj) && obj[i] != '}' {
		kEnd := skipString(obj, i)
		key := memberKey(obj[i:kEnd])
		i = skipSpace(obj, kEnd)
		i = skipSpace(obj, i+1) // past ':'
		vEnd := skipValue(obj, i)
		if dupKey(entries, &seen, key) {
			dups = append(dups, key)
		} else {
			entries = append(entries, entry{key, obj[i:vEnd]})
		}
		i = skipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return entries, dups
}

// memberKey decodes a member's key, quoted as in the file. A field's name
// comes from knownKeys rather than as a copy out of the file for every
// guest.
func memberKey(quoted []byte) string {
	if bytes.IndexByte(quoted, '\\') >= 0 {
		var key string
		_ = json.Unmarshal(quoted, &key)
		return key
	}
	if k, ok := knownKeys[string(quoted[1:len(quoted)-1])]; ok {
		return k
	}
	return string(quoted[1 : len(quoted)-1])
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

// rawMembers is json.Unmarshal of a valid JSON value into a
// map[string]json.RawMessage, without the reflection: members by key, the
// last of a duplicate key winning; null gives a nil map; ok is false for
// anything but an object or null.
func rawMembers(v []byte) (map[string]json.RawMessage, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if len(v) == 0 || v[0] != '{' {
		return nil, false
	}
	m := map[string]json.RawMessage{}
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != '}' {
		kEnd := skipString(v, i)
		key := memberKey(v[i:kEnd])
		i = skipSpace(v, kEnd)
		i = skipSpace(v, i+1)
		vEnd := skipValue(v, i)
		m[key] = json.RawMessage(v[i:vEnd])
		i = skipSpace(v, vEnd)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return m, true
}

// marshalRawMap gives the bytes json.Marshal gives for m (keys sorted,
// values compacted, HTML characters escaped), without its reflection and
// per-value validation; the values must be valid JSON.
func marshalRawMap(m map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	out := make([]byte, 0, n)
	out = append(out, '{')
	var tmp bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		if plainKey(k) {
			out = append(out, '"')
			out = append(out, k...)
			out = append(out, '"')
		} else {
			kb, _ := json.Marshal(k)
			out = append(out, kb...)
		}
		out = append(out, ':')
		v := m[k]
		if needsCompact(v) {
			tmp.Reset()
			var c bytes.Buffer
			if json.Compact(&c, v) == nil {
				json.HTMLEscape(&tmp, c.Bytes())
				out = append(out, tmp.Bytes()...)
				continue
			}
		}
		out = append(out, v...)
	}
	return append(out, '}')
}

func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func needsCompact(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			return true
		}
	}
	return false
}

// dupKey reports whether key is among entries' keys: a scan while there are
// few, a map once there are many (lxc_configs).
func dupKey(entries []entry, seen *map[string]bool, key string) bool {
	if *seen == nil {
		if len(entries) < 32 {
			for _, e := range entries {
				if e.key == key {
					return true
				}
			}
			return false
		}
		*seen = make(map[string]bool, 2*len(entries))
		for _, e := range entries {
			(*seen)[e.key] = true
		}
	}
	if (*seen)[key] {
		return true
	}
	(*seen)[key] = true
	return false
}

// sameBytes reports whether a and b are the same bytes in memory, not
// only equal ones.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
