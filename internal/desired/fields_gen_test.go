package desired

import (
	"bytes"
	"os"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/config"
	"github.com/phoenix-hypervisor/phoenix/internal/desired/gen"
)

// fields_gen.go is what the generator makes of api.Spec and the schemas
// today: a field added to either without `go generate ./internal/desired`
// fails here, not as a fast path that silently skips the field.
func TestFieldsGen_upToDate(t *testing.T) {
	var schemas []gen.Schema
	for _, n := range []schemaName{schemaLXC, schemaVM} {
		data, err := config.Schemas.ReadFile("schemas/" + string(n))
		if err != nil {
			t.Fatal(err)
		}
		schemas = append(schemas, gen.Schema{Name: string(n), Data: data})
	}
	want, err := gen.Source(schemas...)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("fields_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Errorf("fields_gen.go is stale: run `go generate ./internal/desired`")
	}
}
