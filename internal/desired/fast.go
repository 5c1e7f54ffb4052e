package desired

//go:generate go run mkfields.go

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// fastSpec decodes one guest object into spec, checking on the way what the
// guest schemas check, in one pass over the bytes. It is the fast path of
// loading: at 10,000 guests the schema library's generic decode and check
// plus encoding/json's reflection were three quarters of the cost of every
// verb.
//
// It is strict rather than complete: ok true promises that the schema check
// finds nothing and that json.Unmarshal gives the same Spec; ok false only
// means "not sure" (an unusual type, an escape in a key, a null, a
// duplicate key, a number with a fraction, ...), and the caller then runs
// the schema check and json.Unmarshal, which give the exact problems. raw
// must be valid JSON (the file it came from passed json.Valid).
// fast_test.go checks the promise against the slow path.
func fastSpec(raw []byte, spec *api.Spec) (ok bool) {
	return specFields.decode(raw, spec)
}

// object is one struct type's JSON fields as the fast path decodes them.
// fields_gen.go builds one per type reachable from api.Spec, from the Go
// types and the guest schemas (go generate; see the gen package), so a new
// field is never written out here by hand.
type object[T any] struct {
	fields []fieldDec[T]
	// names lists the JSON names in field order (the order of the struct).
	names []string
	index map[string]uint
	// fold holds the names encoding/json would match case-insensitively: a
	// key that folds to one of them but is not it exactly is left to the
	// slow path.
	fold map[string]bool
}

// knownKeys holds the JSON name of every field of every object, filled
// as the objects are made at init and only read afterwards: a scan takes
// a known key from here instead of copying it out of the file.
var knownKeys = map[string]string{}

// fieldDec decodes one member's value into its field of a *T, reporting
// false for anything it is not sure of.
type fieldDec[T any] struct {
	name string
	dec  func(v []byte, p *T) bool
}

func newObject[T any](fields []fieldDec[T]) *object[T] {
	if len(fields) > 64 {
		panic("desired: more than 64 fields in one object; the seen mask is a uint64")
	}
	o := &object[T]{fields: fields, index: make(map[string]uint, len(fields)), fold: make(map[string]bool, len(fields))}
	for i, f := range fields {
		knownKeys[f.name] = f.name
		o.names = append(o.names, f.name)
		o.index[f.name] = uint(i)
		o.fold[strings.ToLower(f.name)] = true
	}
	return o
}

// decode decodes one JSON object into p: each known member once (a key
// given twice is left to the slow path), unknown members only when
// encoding/json surely ignores them too.
func (o *object[T]) decode(v []byte, p *T) bool {
	var seen uint64
	d := fastDec{b: v}
	return d.object(func(key string, v []byte) bool {
		i, known := o.index[key]
		if !known {
			return unknownKeyOK(key, o.fold)
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		return o.fields[i].dec(v, p)
	})
}

// unknownKeyOK reports whether an unknown key is surely ignored by
// json.Unmarshal: ASCII (encoding/json folds some non-ASCII letters onto
// ASCII ones) and not a case variant of a known field.
func unknownKeyOK(key string, fold map[string]bool) bool {
	lower := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x80 {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			lower = true
		}
	}
	if !lower {
		return !fold[key]
	}
	b := []byte(key)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return !fold[string(b)]
}

// The decoders fields_gen.go calls, one per Go type it knows; each takes
// the member's raw value and where it goes.

// noMin is the minimum of an integer the schemas do not bound; the
// generator writes it into fields_gen.go for such a field (none today).
//
//lint:ignore U1000 used by generated code when a schema leaves an integer unbounded
const noMin = math.MinInt

func decString(v []byte, dst *string, minLen int, pattern *regexp.Regexp) bool {
	s, ok := jsonString(v)
	*dst = s
	if minLen > 0 && utf8.RuneCountInString(s) < minLen {
		return false
	}
	return ok && (pattern == nil || pattern.MatchString(s))
}

func decInt(v []byte, dst *int, min int) bool {
	n, ok := jsonInt(v, min)
	*dst = n
	return ok
}

func decIntPtr(v []byte, dst **int, min int) bool {
	*dst = new(int)
	return decInt(v, *dst, min)
}

func decBool(v []byte, dst *bool) bool {
	b, ok := jsonBool(v)
	*dst = b
	return ok
}

func decBoolPtr(v []byte, dst **bool) bool {
	*dst = new(bool)
	return decBool(v, *dst)
}

func decRef(v []byte, dst *api.Ref) bool {
	r, ok := jsonRef(v)
	*dst = r
	return ok
}

func decRefPtr(v []byte, dst **api.Ref) bool {
	*dst = new(api.Ref)
	return decRef(v, *dst)
}

func decRefs(v []byte, dst *[]api.Ref) bool { return decSlice(v, dst, decFunc[api.Ref](decRef)) }

func decStrings(v []byte, dst *[]string) bool {
	return decSlice(v, dst, decFunc[string](func(v []byte, s *string) bool { return decString(v, s, 0, nil) }))
}

// decNameservers decodes what api.Nameservers accepts: a string of
// addresses or an array of strings.
func decNameservers(v []byte, dst *api.Nameservers) bool {
	if len(v) > 0 && v[0] == '"' {
		str, ok := jsonString(v)
		*dst = api.SplitNameservers(str)
		return ok
	}
	return decStrings(v, (*[]string)(dst))
}

func decStringMap(v []byte, dst *map[string]string) bool {
	m, ok := jsonStringMap(v)
	*dst = m
	return ok
}

// decObjectMap decodes a free-form object (user_config) with encoding/json,
// so that its values are exactly encoding/json's.
func decObjectMap(v []byte, dst *map[string]any) bool {
	return len(v) > 0 && v[0] == '{' && json.Unmarshal(v, dst) == nil
}

func decPtr[T any](v []byte, dst **T, o *object[T]) bool {
	*dst = new(T)
	return o.decode(v, *dst)
}

func decObjects[T any](v []byte, dst *[]T, o *object[T]) bool { return decSlice(v, dst, o) }

// itemDecoder decodes one element of an array. An interface rather than a
// func value: o.decode as a func would allocate a closure on every call.
type itemDecoder[T any] interface {
	decode(v []byte, p *T) bool
}

type decFunc[T any] func(v []byte, p *T) bool

func (f decFunc[T]) decode(v []byte, p *T) bool { return f(v, p) }

// decSlice decodes an array: [] is an empty, non-nil slice, as with
// encoding/json.
func decSlice[T any](v []byte, dst *[]T, item itemDecoder[T]) bool {
	out := []T{}
	d := fastDec{b: v}
	ok := d.array(func(v []byte) bool {
		// Decoded in place: a local passed to an interface method would
		// escape, one allocation per element.
		var zero T
		out = append(out, zero)
		return item.decode(v, &out[len(out)-1])
	})
	*dst = out
	return ok
}

func jsonStringMap(v []byte) (map[string]string, bool) {
	out := map[string]string{}
	d := fastDec{b: v}
	ok := d.object(func(key string, v []byte) bool {
		if _, dup := out[key]; dup || !utf8.ValidString(key) {
			return false
		}
		s, ok := jsonString(v)
		out[key] = s
		return ok
	})
	return out, ok
}

// jsonString decodes a string without escapes; anything else is left to
// the slow path.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	high := false
	for _, c := range body {
		switch {
		case c == '\\':
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		case c >= 0x80:
			high = true
		}
	}
	// encoding/json turns invalid UTF-8 into U+FFFD (Load refuses such
	// files before, but the promise holds on its own).
	if high && !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// jsonInt decodes a plain integer (no fraction or exponent, which the schema
// accepts as integers and encoding/json does not) of at least min.
func jsonInt(v []byte, min int) (int, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < min {
		return 0, false
	}
	return n, true
}

func jsonBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func allDigits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// jsonRef decodes an id_ref: a string of digits or a non-negative integer.
func jsonRef(v []byte) (api.Ref, bool) {
	if len(v) > 1 && v[0] == '"' {
		body := v[1 : len(v)-1]
		if !allDigits(body) {
			return api.Ref{}, false
		}
		s := string(body)
		id, _ := api.ParseID(s)
		return api.Ref{Raw: s, ID: id}, true
	}
	if !allDigits(v) {
		return api.Ref{}, false
	}
	s := string(v)
	id, _ := api.ParseID(s)
	return api.Ref{Raw: s, ID: id}, true
}

// fastDec walks one valid JSON value.
type fastDec struct{ b []byte }

// object calls fn for each member of an object, stopping at the first
// false; a value that is not an object, or a key with an escape, is false.
func (d *fastDec) object(fn func(key string, v []byte) bool) bool {
	b := d.b
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != '}' {
		kEnd := skipString(b, i)
		key := b[i+1 : kEnd-1]
		for _, c := range key {
			if c == '\\' {
				return false
			}
		}
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // past ':'
		vEnd := skipValue(b, i)
		k, known := knownKeys[string(key)]
		if !known {
			k = string(key)
		}
		if !fn(k, b[i:vEnd]) {
			return false
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}

// array calls fn for each element of an array, stopping at the first false;
// a value that is not an array is false.
func (d *fastDec) array(fn func(v []byte) bool) bool {
	b := d.b
	if len(b) == 0 || b[0] != '[' {
		return false
	}
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != ']' {
		vEnd := skipValue(b, i)
		if !fn(b[i:vEnd]) {
			return false
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return true
}
