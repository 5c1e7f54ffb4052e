package testlab

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ValidateJSON fails the test unless doc is JSON that matches the schema
// in the file schemaPath: tests check phoenix's real output against the
// design's schemas with it.
func ValidateJSON(tb testing.TB, schemaPath, doc string) {
	tb.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		tb.Fatal(err)
	}
	sdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://"+schemaPath, sdoc); err != nil {
		tb.Fatal(err)
	}
	s, err := c.Compile("mem://" + schemaPath)
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		tb.Fatalf("output is not JSON: %v\n%s", err, doc)
	}
	if err := s.Validate(inst); err != nil {
		tb.Fatalf("output does not match %s: %v\n%s", schemaPath, err, doc)
	}
}
