//go:build ignore

// mkfields writes fields_gen.go from api.Spec and the guest schemas:
// `go generate ./internal/desired` after adding a guest field.
package main

import (
	"fmt"
	"os"

	"github.com/phoenix-hypervisor/phoenix/config"
	"github.com/phoenix-hypervisor/phoenix/internal/desired/gen"
)

func main() {
	src, err := gen.Source(guestSchemas()...)
	if err == nil {
		err = os.WriteFile("fields_gen.go", src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkfields:", err)
		os.Exit(1)
	}
}

func guestSchemas() []gen.Schema {
	var out []gen.Schema
	for _, name := range []string{"phoenix_lxc_configs.schema.json", "phoenix_vm_configs.schema.json"} {
		data, err := config.Schemas.ReadFile("schemas/" + name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkfields:", err)
			os.Exit(1)
		}
		out = append(out, gen.Schema{Name: name, Data: data})
	}
	return out
}
