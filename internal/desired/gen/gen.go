package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Schema is one guest schema file: its name (for messages) and its bytes.
// The guest object is its $defs/guest.
type Schema struct {
	Name string
	Data []byte
}

// Source returns fields_gen.go: one field table per struct type reachable
// from api.Spec, checked against every schema given (the LXC and the VM
// file's: a guest taking the fast path must pass both).
func Source(schemas ...Schema) ([]byte, error) {
	g := &generator{objects: map[reflect.Type]*objectOut{}}
	var guests []node
	for _, s := range schemas {
		var root map[string]any
		if err := json.Unmarshal(s.Data, &root); err != nil {
			return nil, fmt.Errorf("schema %s: %w", s.Name, err)
		}
		d := &doc{name: s.Name, root: root}
		guest, err := d.resolve(map[string]any{"$ref": "#/$defs/guest"})
		if err != nil {
			return nil, err
		}
		guests = append(guests, node{d, guest})
	}
	if len(guests) == 0 {
		return nil, fmt.Errorf("no schema given")
	}
	if _, err := g.object(reflect.TypeOf(api.Spec{}), guests, "", true); err != nil {
		return nil, err
	}
	return g.render()
}

// doc is one parsed schema file.
type doc struct {
	name string
	root map[string]any
}

// resolve follows a local "$ref" ("#/$defs/x") to the schema it names.
func (d *doc) resolve(n map[string]any) (map[string]any, error) {
	for i := 0; i < 16; i++ {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n, nil
		}
		if len(n) > 2 || len(n) == 2 && n["description"] == nil {
			return nil, fmt.Errorf("schema %s: %s: $ref beside other keywords is not understood by the generator", d.name, ref)
		}
		cur := any(d.root)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok || !strings.HasPrefix(ref, "#/") {
				return nil, fmt.Errorf("schema %s: cannot resolve $ref %q", d.name, ref)
			}
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("schema %s: cannot resolve $ref %q", d.name, ref)
		}
		n = next
	}
	return nil, fmt.Errorf("schema %s: $ref chain too long", d.name)
}

// canonical is a schema with every $ref resolved and descriptions dropped,
// as JSON with sorted keys: two schemas that check the same thing compare
// equal.
func (d *doc) canonical(v any) (string, error) {
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			m, err := d.resolve(x)
			if err != nil {
				return nil, err
			}
			out := map[string]any{}
			for k, e := range m {
				if k == "description" {
					continue
				}
				if out[k], err = walk(e); err != nil {
					return nil, err
				}
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				var err error
				if out[i], err = walk(e); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		return v, nil
	}
	c, err := walk(v)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(c)
	return string(b), err
}

// node is a schema in one document; a nil schema means the document does
// not describe this member (it then checks nothing about it).
type node struct {
	doc    *doc
	schema map[string]any
}

type generator struct {
	objects  map[reflect.Type]*objectOut
	order    []*objectOut
	patterns []patternOut
}

type objectOut struct {
	typ    reflect.Type
	name   string // the variable: specFields, volumeFields, ...
	fields []fieldOut
}

type fieldOut struct{ json, call string }

type patternOut struct{ name, expr string }

// The shapes of the types with their own UnmarshalJSON: the fast path's
// hand-written decoder for each checks exactly this schema.
const (
	idRefShape       = `{"anyOf":[{"pattern":"^[0-9]+$","type":"string"},{"minimum":0,"type":"integer"}]}`
	nameserversShape = `{"anyOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}`
)

var (
	refType         = reflect.TypeOf(api.Ref{})
	nameserversType = reflect.TypeOf(api.Nameservers{})
)

// object writes the table of struct type t, checked against the schemas
// in ns, and returns its variable name. path is the member's dotted path
// below the guest; top marks api.Spec, whose every field must be in the
// schema.
func (g *generator) object(t reflect.Type, ns []node, path string, top bool) (string, error) {
	if o := g.objects[t]; o != nil {
		return o.name, nil
	}
	o := &objectOut{typ: t, name: lowerFirst(t.Name()) + "Fields"}
	g.objects[t] = o
	g.order = append(g.order, o)
	props := make([]map[string]any, len(ns))
	for i, n := range ns {
		if n.schema == nil {
			continue
		}
		if err := only(n, "type", "properties"); err != nil {
			return "", fmt.Errorf("%s: %w", where(t, path), err)
		}
		if n.schema["type"] != "object" {
			return "", fmt.Errorf("%s: schema %s: want type object for a Go struct", where(t, path), n.doc.name)
		}
		props[i], _ = n.schema["properties"].(map[string]any)
	}
	known := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" || f.Anonymous {
			return "", fmt.Errorf("%s.%s: want a json tag naming the field", t, f.Name)
		}
		known[name] = true
		sub := make([]node, len(ns))
		for j, n := range ns {
			p, ok := props[j][name].(map[string]any)
			if !ok {
				if top {
					return "", fmt.Errorf("schema %s: api.Spec.%s (%q) is not a property of the guest: add it there", n.doc.name, f.Name, name)
				}
				continue
			}
			s, err := n.doc.resolve(p)
			if err != nil {
				return "", err
			}
			sub[j] = node{n.doc, s}
		}
		call, err := g.call(f.Type, sub, "&p."+f.Name, join(path, name))
		if err != nil {
			return "", err
		}
		o.fields = append(o.fields, fieldOut{json: name, call: call})
	}
	for j, p := range props {
		for name := range p {
			if !known[name] {
				return "", fmt.Errorf("schema %s: %s: property %q has no field in %s: add it there", ns[j].doc.name, where(t, path), name, t)
			}
		}
	}
	if len(o.fields) > 64 {
		return "", fmt.Errorf("%s has more than 64 fields, more than the fast path's seen mask holds", t)
	}
	return o.name, nil
}

// call returns the Go expression that decodes v into dst, a field of Go
// type t described by ns.
func (g *generator) call(t reflect.Type, ns []node, dst, path string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("field %s (%s): %s", path, t, fmt.Sprintf(format, args...))
	}
	elem, ptr := t, false
	if t.Kind() == reflect.Pointer {
		elem, ptr = t.Elem(), true
	}
	switch {
	case elem == refType:
		if err := shape(ns, idRefShape); err != nil {
			return fail("%v", err)
		}
		return pick(ptr, "decRefPtr(v, %s)", "decRef(v, %s)", dst), nil
	case t == nameserversType:
		if err := shape(ns, nameserversShape); err != nil {
			return fail("%v", err)
		}
		return fmt.Sprintf("decNameservers(v, %s)", dst), nil
	case elem == reflect.TypeOf(""):
		if ptr {
			return fail("pointers to strings are not supported by the generator")
		}
		c, err := leaf(ns, "string", "minLength", "pattern")
		if err != nil {
			return fail("%v", err)
		}
		minLen, err := intKeyword(c, "minLength", 0)
		if err != nil {
			return fail("%v", err)
		}
		pattern := "nil"
		if p, ok := c["pattern"].(string); ok {
			pattern = camel(strings.ReplaceAll(path, ".", "_")) + "Pattern"
			g.patterns = append(g.patterns, patternOut{pattern, strconv.Quote(p)})
		}
		return fmt.Sprintf("decString(v, %s, %d, %s)", dst, minLen, pattern), nil
	case elem == reflect.TypeOf(0):
		c, err := leaf(ns, "integer", "minimum")
		if err != nil {
			return fail("%v", err)
		}
		min := "noMin"
		if _, ok := c["minimum"]; ok {
			n, err := intKeyword(c, "minimum", 0)
			if err != nil {
				return fail("%v", err)
			}
			min = strconv.Itoa(n)
		}
		return pick(ptr, "decIntPtr(v, %s, %s)", "decInt(v, %s, %s)", dst, min), nil
	case elem == reflect.TypeOf(false):
		if _, err := leaf(ns, "boolean"); err != nil {
			return fail("%v", err)
		}
		return pick(ptr, "decBoolPtr(v, %s)", "decBool(v, %s)", dst), nil
	case t == reflect.TypeOf(map[string]string{}):
		if err := shape(ns, `{"additionalProperties":{"type":"string"},"type":"object"}`); err != nil {
			return fail("%v", err)
		}
		return fmt.Sprintf("decStringMap(v, %s)", dst), nil
	case t == reflect.TypeOf(map[string]any{}):
		if err := shape(ns, `{"type":"object"}`); err != nil {
			return fail("%v", err)
		}
		return fmt.Sprintf("decObjectMap(v, %s)", dst), nil
	case t.Kind() == reflect.Slice:
		items := make([]node, len(ns))
		for i, n := range ns {
			if n.schema == nil {
				continue
			}
			if err := only(n, "type", "items"); err != nil || n.schema["type"] != "array" {
				return fail("schema %s: want an array with items and nothing else", n.doc.name)
			}
			raw, _ := n.schema["items"].(map[string]any)
			s, err := n.doc.resolve(raw)
			if err != nil {
				return "", err
			}
			items[i] = node{n.doc, s}
		}
		switch it := t.Elem(); {
		case it == refType:
			if err := shape(items, idRefShape); err != nil {
				return fail("items: %v", err)
			}
			return fmt.Sprintf("decRefs(v, %s)", dst), nil
		case it == reflect.TypeOf(""):
			if err := shape(items, `{"type":"string"}`); err != nil {
				return fail("items: %v", err)
			}
			return fmt.Sprintf("decStrings(v, %s)", dst), nil
		case it.Kind() == reflect.Struct:
			name, err := g.object(it, items, path, false)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("decObjects(v, %s, %s)", dst, name), nil
		}
	case ptr && elem.Kind() == reflect.Struct:
		name, err := g.object(elem, ns, path, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("decPtr(v, %s, %s)", dst, name), nil
	case elem.Kind() == reflect.Struct:
		name, err := g.object(elem, ns, path, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s.decode(v, %s)", name, dst), nil
	}
	return fail("this Go type is not supported by the generator: teach internal/desired/gen and fast.go")
}

func pick(ptr bool, ifPtr, ifValue string, args ...any) string {
	if ptr {
		return fmt.Sprintf(ifPtr, args...)
	}
	return fmt.Sprintf(ifValue, args...)
}

// only refuses a schema with keywords other than allowed (descriptions
// aside): the fast path would not check them.
func only(n node, allowed ...string) error {
	for k := range n.schema {
		if k != "description" && !slices.Contains(allowed, k) {
			return fmt.Errorf("schema %s: keyword %q is not understood by the generator", n.doc.name, k)
		}
	}
	return nil
}

// leaf checks that the schemas describing a scalar agree, are of type
// typ and use no keyword but allowed, and returns the schema (nil keywords
// when none describes it).
func leaf(ns []node, typ string, allowed ...string) (map[string]any, error) {
	var first map[string]any
	var firstCanon string
	for _, n := range ns {
		if n.schema == nil {
			continue
		}
		if err := only(n, append(allowed, "type")...); err != nil {
			return nil, err
		}
		if n.schema["type"] != typ {
			return nil, fmt.Errorf("schema %s: want type %q, have %v", n.doc.name, typ, n.schema["type"])
		}
		c, err := n.doc.canonical(n.schema)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first, firstCanon = n.schema, c
		} else if c != firstCanon {
			return nil, fmt.Errorf("the schemas disagree: %s and %s", firstCanon, c)
		}
	}
	if first == nil {
		first = map[string]any{}
	}
	return first, nil
}

// shape checks that every schema describing a member is want, the one
// shape its hand-written decoder checks.
func shape(ns []node, want string) error {
	for _, n := range ns {
		if n.schema == nil {
			continue
		}
		c, err := n.doc.canonical(n.schema)
		if err != nil {
			return err
		}
		if c != want {
			return fmt.Errorf("schema %s: want exactly %s (what its decoder checks), have %s", n.doc.name, want, c)
		}
	}
	return nil
}

func intKeyword(c map[string]any, k string, def int) (int, error) {
	v, ok := c[k]
	if !ok {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s: want a whole number, have %v", k, v)
	}
	return int(f), nil
}

func (g *generator) render() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/desired/gen from api.Spec and the guest schemas; DO NOT EDIT.\n\npackage desired\n\n")
	b.WriteString("import (\n")
	if len(g.patterns) > 0 {
		b.WriteString("\t\"regexp\"\n\n")
	}
	b.WriteString("\t\"github.com/phoenix-hypervisor/phoenix/api\"\n)\n\n")
	for _, o := range g.order {
		fmt.Fprintf(&b, "var %s = newObject([]fieldDec[%s]{\n", o.name, o.typ)
		for _, f := range o.fields {
			fmt.Fprintf(&b, "\t{%q, func(v []byte, p *%s) bool { return %s }},\n", f.json, o.typ, f.call)
		}
		b.WriteString("})\n\n")
	}
	if len(g.patterns) > 0 {
		b.WriteString("var (\n")
		for _, p := range g.patterns {
			fmt.Fprintf(&b, "\t%s = regexp.MustCompile(%s)\n", p.name, p.expr)
		}
		b.WriteString(")\n\n")
	}
	// intFields is what exact.go checks for 2048.0: the integer members by
	// dotted path below the guest, list items without an index.
	ints := intPaths(reflect.TypeOf(api.Spec{}), "")
	sort.Strings(ints)
	b.WriteString("var intFields = map[string]bool{\n")
	for _, p := range ints {
		fmt.Fprintf(&b, "\t%q: true,\n", p)
	}
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format generated code: %w\n%s", err, b.Bytes())
	}
	return out, nil
}

// intPaths lists the integer members of struct type t by dotted path.
func intPaths(t reflect.Type, path string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		switch {
		case ft == reflect.TypeOf(0):
			out = append(out, join(path, name))
		case ft.Kind() == reflect.Struct && ft != refType:
			out = append(out, intPaths(ft, join(path, name))...)
		}
	}
	return out
}

func where(t reflect.Type, path string) string {
	if path == "" {
		return t.String()
	}
	return path + " (" + t.String() + ")"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// lowerFirst lowers a Go name's leading capitals: Spec -> spec, IDMap ->
// idMap, HealthCheck -> healthCheck.
func lowerFirst(s string) string {
	r := []rune(s)
	for i := range r {
		if !unicode.IsUpper(r[i]) || i > 0 && i+1 < len(r) && unicode.IsLower(r[i+1]) {
			break
		}
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}

// camel turns template_snapshot_name into templateSnapshotName.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
