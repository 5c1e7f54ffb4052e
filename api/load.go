package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"unicode/utf8"
)

// Load reads the desired state from dir and validates it. It returns an
// *InvalidError listing every problem found when the files are not valid;
// the returned Config is then nil.
//
// The LXC and VM files are found by their standard names in dir, unless
// phoenix_hypervisor_config.json names them in core_paths and the file it
// names exists: the reference lab's core_paths point at the old tool's
// absolute install paths, which must not stop the same files from loading
// from another folder.
func Load(dir string) (*Config, error) {
	var ps problems
	c := &Config{Dir: dir, Guests: map[ID]*Guest{}}

	lxcPath := filepath.Join(dir, LXCFile)
	vmPath := filepath.Join(dir, VMFile)
	hvPath := filepath.Join(dir, HypervisorFile)
	if data, err := os.ReadFile(hvPath); err == nil {
		c.HypervisorPath = hvPath
		if doc, ok := parseFile(&ps, hvPath, data); ok {
			validateSchema(&ps, hvPath, schemaHypervisor, doc, nil)
			if err := json.Unmarshal(data, &c.Hypervisor); err != nil {
				ps.add(hvPath, "", "", "top level: want a JSON object")
			}
			lxcPath = corePath(c.Hypervisor, hvPath, "lxc_config_file", lxcPath)
			vmPath = corePath(c.Hypervisor, hvPath, "vm_config_file", vmPath)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		ps.add(hvPath, "", "", "read: %v", err)
	}

	files := 0
	files += c.loadLXC(&ps, lxcPath)
	files += c.loadVM(&ps, vmPath)
	if files == 0 && len(ps) == 0 {
		ps.add(dir, "", "", "no %s or %s in this folder (set --config-dir or PHOENIX_CONFIG_DIR)", LXCFile, VMFile)
	}
	c.index()
	validateGuests(&ps, c)
	if len(ps) > 0 {
		return nil, &InvalidError{Problems: ps}
	}
	return c, nil
}

func corePath(hv map[string]json.RawMessage, hvPath, key, def string) string {
	var paths map[string]any
	if err := json.Unmarshal(hv["core_paths"], &paths); err != nil {
		return def
	}
	p, _ := paths[key].(string)
	if p == "" {
		return def
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(hvPath), p)
	}
	if _, err := os.Stat(p); err != nil {
		return def
	}
	return p
}

// parseFile checks that data is UTF-8 JSON and decodes it for the schema
// validator. It reports problems itself and returns false on failure.
func parseFile(ps *problems, path string, data []byte) (any, bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		ps.add(path, "", "", "file is empty; want a JSON object")
		return nil, false
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		line, col := position(data, off)
		ps.add(path, "", "", "invalid UTF-8 at line %d, column %d (byte %d)", line, col, off)
		return nil, false
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		ps.add(path, "", "", "%s", jsonErr(data, err))
		return nil, false
	}
	if dec.More() {
		line, col := position(data, int(dec.InputOffset()))
		ps.add(path, "", "", "unexpected data after the JSON value at line %d, column %d", line, col)
		return nil, false
	}
	if _, ok := doc.(map[string]any); !ok {
		ps.add(path, "", "", "top level: want a JSON object, got %s", jsonType(doc))
		return nil, false
	}
	return doc, true
}

func jsonErr(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, int(se.Offset))
		return fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, se)
	}
	return "malformed JSON: " + err.Error()
}

func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
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
	doc, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return 1
	}
	entries, dups := lxcEntries(data)
	for _, key := range dups {
		ps.add(path, key, "", "ID %s is used twice in lxc_configs", key)
	}
	bad := validateSchema(ps, path, schemaLXC, doc, func(loc []string) (string, int) {
		if len(loc) >= 2 && loc[0] == "lxc_configs" {
			return loc[1], 2
		}
		return "", 0
	})
	for _, e := range entries {
		key, raw := e.key, e.raw
		id, err := ParseID(key)
		if err != nil {
			if !bad[key] {
				ps.add(path, key, "lxc_configs", "key %q is not a valid guest ID (want a number from %d to %d)", key, MinID, MaxID)
			}
			continue
		}
		g := &Guest{ID: id, Kind: KindLXC, File: path, Raw: raw}
		c.addGuest(ps, g, bad[key])
	}
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
	doc, ok := parseFile(ps, path, data)
	if !ok {
		c.unreadable = true
		return 1
	}
	var top struct {
		Defaults map[string]json.RawMessage `json:"vm_defaults"`
		VMs      []map[string]json.RawMessage
	}
	var shape struct {
		Defaults map[string]json.RawMessage `json:"vm_defaults"`
		VMs      []json.RawMessage          `json:"vms"`
	}
	if err := json.Unmarshal(data, &shape); err == nil {
		top.Defaults = shape.Defaults
		for _, raw := range shape.VMs {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			top.VMs = append(top.VMs, m)
		}
	}
	// Schema locations name VMs by index; problems name them by vmid.
	vmName := func(i int) string {
		if i < len(top.VMs) {
			if v, ok := top.VMs[i]["vmid"]; ok {
				return string(bytes.Trim(v, `"`))
			}
		}
		return "vms[" + strconv.Itoa(i) + "]"
	}
	bad := validateSchema(ps, path, schemaVM, doc, func(loc []string) (string, int) {
		if len(loc) >= 2 && loc[0] == "vms" {
			if i, err := strconv.Atoi(loc[1]); err == nil {
				return vmName(i), 2
			}
		}
		if len(loc) >= 1 && loc[0] == "vm_defaults" {
			return "vm_defaults", 1
		}
		return "", 0
	})
	for i, own := range top.VMs {
		name := vmName(i)
		if own == nil {
			continue
		}
		eff := make(map[string]json.RawMessage, len(top.Defaults)+len(own))
		for k, v := range top.Defaults {
			eff[k] = v
		}
		for k, v := range own {
			eff[k] = v
		}
		raw, _ := json.Marshal(eff)
		id, err := ParseID(string(bytes.Trim(own["vmid"], `"`)))
		if err != nil {
			if !bad[name] {
				ps.add(path, name, "vmid", "%v", err)
			}
			continue
		}
		g := &Guest{ID: id, Kind: KindVM, File: path, Raw: raw}
		c.addGuest(ps, g, bad[name] || bad["vm_defaults"])
	}
	return 1
}

// addGuest decodes the typed spec and records the guest. A guest whose schema
// check failed is still recorded, so references to it do not also show up as
// unknown guests; its typed fields are left empty.
func (c *Config) addGuest(ps *problems, g *Guest, schemaFailed bool) {
	if prev, ok := c.Guests[g.ID]; ok {
		if prev.File == g.File {
			ps.add(g.File, g.ID.String(), "", "ID %s is used twice in this file", g.ID)
		} else {
			ps.add(g.File, g.ID.String(), "", "ID %s is already used by the %s guest in %s; LXC and VM share one ID space", g.ID, prev.Kind, prev.File)
		}
		return
	}
	c.Guests[g.ID] = g
	if schemaFailed {
		g.Hash = "invalid"
		return
	}
	if err := json.Unmarshal(g.Raw, &g.Spec); err != nil {
		ps.add(g.File, g.ID.String(), "", "%v", err)
		return
	}
	g.Hash = SpecHash(g.Raw)
}

// SpecHash identifies a guest's effective spec. Annotations are left out, so
// a converge request alone is not a spec change; key order and white space
// do not count.
func SpecHash(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		sum := sha256.Sum256(raw)
		return hex.EncodeToString(sum[:8])
	}
	delete(m, "annotations")
	canon, _ := json.Marshal(m)
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:8])
}

type entry struct {
	key string
	raw json.RawMessage
}

// lxcEntries reads lxc_configs in file order and lists keys given twice,
// which a plain map decode would silently collapse into one.
func lxcEntries(data []byte) (entries []entry, dups []string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return entries, dups
		}
		if key, _ := t.(string); key != "lxc_configs" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return entries, dups
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return entries, dups
		}
		seen := map[string]bool{}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return entries, dups
			}
			key, _ := t.(string)
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				return entries, dups
			}
			if seen[key] {
				dups = append(dups, key)
				continue
			}
			seen[key] = true
			entries = append(entries, entry{key, raw})
		}
		return entries, dups
	}
	return entries, dups
}
