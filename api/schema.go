package api

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/phoenix-hypervisor/phoenix/config"
)

type schemaName string

const (
	schemaHypervisor schemaName = "phoenix_hypervisor_config.schema.json"
	schemaLXC        schemaName = "phoenix_lxc_configs.schema.json"
	schemaVM         schemaName = "phoenix_vm_configs.schema.json"
)

var (
	compileOnce sync.Once
	compiled    map[schemaName]*jsonschema.Schema
	compileErr  error
	printer     = message.NewPrinter(language.English)
)

func schemas() (map[schemaName]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		names := []schemaName{schemaHypervisor, schemaLXC, schemaVM}
		for _, n := range names {
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
		for _, n := range names {
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

// validateSchema checks doc against the named schema and reports each leaf
// error as a problem. guestOf maps an instance location to the guest it
// belongs to ("" for none). It returns the guests that had problems.
func validateSchema(ps *problems, path string, name schemaName, doc any, guestOf func([]string) (string, int)) map[string]bool {
	bad := map[string]bool{}
	all, err := schemas()
	if err != nil {
		ps.add(path, "", "", "built-in schema: %v", err)
		return bad
	}
	verr := all[name].Validate(doc)
	if verr == nil {
		return bad
	}
	ve, ok := verr.(*jsonschema.ValidationError)
	if !ok {
		ps.add(path, "", "", "%v", verr)
		return bad
	}
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
		if guest != "" {
			bad[guest] = true
		}
		ps.add(path, guest, field, "%s", msg)
	}
	walk(ve)
	return bad
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
