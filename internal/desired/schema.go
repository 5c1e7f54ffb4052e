package desired

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/phoenix-hypervisor/phoenix/config"
)

type schemaName string

// The files' schemas, and the parts of them that check one guest.
const (
	schemaHypervisor schemaName = "phoenix_hypervisor_config.schema.json"
	schemaLXC        schemaName = "phoenix_lxc_configs.schema.json"
	schemaVM         schemaName = "phoenix_vm_configs.schema.json"
	guestSchemaLXC   schemaName = "phoenix_lxc_configs.schema.json#/$defs/guest"
	guestSchemaVM    schemaName = "phoenix_vm_configs.schema.json#/properties/vms/items"
)

type schemaChecker = *jsonschema.Schema

var (
	compileOnce sync.Once
	compiled    map[schemaName]*jsonschema.Schema
	compileErr  error
	printer     = message.NewPrinter(language.English)
)

// schemas compiles the embedded schemas once per process.
func schemas() (map[schemaName]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		files := []schemaName{schemaHypervisor, schemaLXC, schemaVM}
		for _, n := range files {
			data, err := config.Schemas.ReadFile("schemas/" + string(n))
			if err != nil {
				compileErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", n, err)
				return
			}
			if err := c.AddResource("phoenix:/"+string(n), doc); err != nil {
				compileErr = err
				return
			}
		}
		compiled = map[schemaName]*jsonschema.Schema{}
		for _, n := range append(files, guestSchemaLXC, guestSchemaVM) {
			s, err := c.Compile("phoenix:/" + string(n))
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", n, err)
				return
			}
			compiled[n] = s
		}
	})
	return compiled, compileErr
}

func decodeAny(raw []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(raw))
}

// validateDoc checks a whole file that holds no guests.
func validateDoc(ps *problems, path string, name schemaName, data []byte) {
	validateBytes(ps, path, name, data, nil)
}

// validateShallow checks a guest file's top level, its guests left out.
func validateShallow(ps *problems, path string, name schemaName, top map[string]json.RawMessage) {
	data, err := json.Marshal(top)
	if err != nil {
		ps.add(path, "", "", "%v", err)
		return
	}
	validateBytes(ps, path, name, data, func(loc []string) (string, int) {
		if len(loc) >= 1 && loc[0] == "vm_defaults" {
			return "vm_defaults", 1
		}
		return "", 0
	})
}

func validateBytes(ps *problems, path string, name schemaName, data []byte, guestOf func([]string) (string, int)) {
	all, err := schemas()
	if err != nil {
		ps.add(path, "", "", "built-in schema: %v", err)
		return
	}
	doc, err := decodeAny(data)
	if err != nil {
		ps.add(path, "", "", "%v", err)
		return
	}
	schemaProblems(ps, path, all[name], doc, guestOf)
}

// schemaProblems checks doc against sch and reports each leaf error as a
// problem. guestOf maps an instance location to the guest it belongs to
// ("" for none) and how many leading elements name that guest. It returns
// how many problems it added.
func schemaProblems(ps *problems, path string, sch *jsonschema.Schema, doc any, guestOf func([]string) (string, int)) int {
	verr := sch.Validate(doc)
	if verr == nil {
		return 0
	}
	ve, ok := verr.(*jsonschema.ValidationError)
	if !ok {
		ps.add(path, "", "", "%v", verr)
		return 1
	}
	n := 0
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if kw := e.ErrorKind.KeywordPath(); len(kw) > 0 && kw[0] == "propertyNames" {
			// Guest IDs used as keys are checked, with a clearer message, by Load.
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		guest, depth := "", 0
		if guestOf != nil {
			guest, depth = guestOf(e.InstanceLocation)
		}
		field := fieldOf(e.InstanceLocation[depth:])
		msg := e.ErrorKind.LocalizedString(printer)
		key := guest + "\x00" + field + "\x00" + msg
		if seen[key] {
			return
		}
		seen[key] = true
		ps.add(path, guest, field, "%s", msg)
		n++
	}
	walk(ve)
	return n
}

// fieldOf names the field of an instance location relative to its guest.
func fieldOf(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var b strings.Builder
	for i, p := range loc {
		if isIndex(p) {
			fmt.Fprintf(&b, "[%s]", p)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
