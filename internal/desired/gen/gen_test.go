package gen

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/config"
)

func realSchemas(t *testing.T) []Schema {
	t.Helper()
	var out []Schema
	for _, n := range []string{"phoenix_lxc_configs.schema.json", "phoenix_vm_configs.schema.json"} {
		data, err := config.Schemas.ReadFile("schemas/" + n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Schema{Name: n, Data: data})
	}
	return out
}

// edit applies fn to the guest definition of copies of the schemas: of
// the LXC file's alone when onlyFirst, else of both.
func edit(t *testing.T, onlyFirst bool, fn func(guest, defs map[string]any)) []Schema {
	t.Helper()
	s := realSchemas(t)
	for i := range s {
		if onlyFirst && i > 0 {
			break
		}
		var root map[string]any
		if err := json.Unmarshal(s[i].Data, &root); err != nil {
			t.Fatal(err)
		}
		defs := root["$defs"].(map[string]any)
		fn(defs["guest"].(map[string]any), defs)
		data, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		s[i].Data = data
	}
	return s
}

func prop(guest map[string]any, name string) map[string]any {
	return guest["properties"].(map[string]any)[name].(map[string]any)
}

func TestSource_realSchemas(t *testing.T) {
	src, err := Source(realSchemas(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"memory_mb", func(v []byte, p *api.Spec) bool { return decInt(v, &p.MemoryMB, 1) }}`,
		`{"name", func(v []byte, p *api.Spec) bool { return decString(v, &p.Name, 1, nil) }}`,
		`{"owner_uid", func(v []byte, p *api.MountPoint) bool { return decIntPtr(v, &p.OwnerUID, 0) }}`,
		`templateSnapshotNamePattern = regexp.MustCompile("^[a-zA-Z][a-zA-Z0-9_-]{0,39}$")`,
		`"volumes.size_gb":`,
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated source lacks %s", want)
		}
	}
}

// A schema the fast path could not check as the schema library does is
// refused with a message naming the member, never generated leniently.
func TestSource_refusesWhatTheFastPathCannotCheck(t *testing.T) {
	tests := []struct {
		name      string
		onlyFirst bool
		edit      func(guest, defs map[string]any)
		want      string
	}{
		{"unknown keyword on a scalar", false, func(g, _ map[string]any) { prop(g, "cores")["maximum"] = 512 }, `keyword "maximum"`},
		{"unknown keyword in a nested object", false, func(_, d map[string]any) {
			d["volume"].(map[string]any)["required"] = []any{"name"}
		}, `keyword "required"`},
		{"unknown keyword in network_config", false, func(g, _ map[string]any) {
			prop(g, "network_config")["additionalProperties"] = false
		}, `keyword "additionalProperties"`},
		{"$ref cycle", false, func(g, d map[string]any) {
			d["loop"] = map[string]any{"$ref": "#/$defs/loop"}
			g["properties"].(map[string]any)["cores"] = map[string]any{"$ref": "#/$defs/loop"}
		}, "$ref chain too long"},
		{"required guest fields", false, func(g, _ map[string]any) { g["required"] = []any{"name"} }, `api.Spec: schema phoenix_lxc_configs.schema.json: keyword "required"`},
		{"property without a Go field", false, func(g, _ map[string]any) {
			g["properties"].(map[string]any)["ram"] = map[string]any{"type": "integer"}
		}, `property "ram" has no field`},
		{"Go field without a property", true, func(g, _ map[string]any) { delete(g["properties"].(map[string]any), "cores") }, `phoenix_lxc_configs.schema.json: api.Spec.Cores ("cores") is not a property`},
		{"type that does not fit the Go type", false, func(g, _ map[string]any) { prop(g, "cores")["type"] = "string" }, `want type "integer"`},
		{"fractional minimum", false, func(g, _ map[string]any) { prop(g, "cores")["minimum"] = 0.5 }, "want a whole number"},
		{"schemas that disagree", true, func(g, _ map[string]any) { prop(g, "cores")["minimum"] = 2 }, "the schemas disagree"},
		{"id_ref changed", false, func(_, d map[string]any) {
			d["id_ref"].(map[string]any)["anyOf"].([]any)[1].(map[string]any)["minimum"] = 100
		}, "what its decoder checks"},
		{"string list items constrained", false, func(_, d map[string]any) {
			d["string_list"].(map[string]any)["items"].(map[string]any)["minLength"] = 1
		}, "what its decoder checks"},
		{"annotations values not strings", false, func(g, _ map[string]any) {
			prop(g, "annotations")["additionalProperties"] = map[string]any{"type": "integer"}
		}, "what its decoder checks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Source(edit(t, tt.onlyFirst, tt.edit)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Source() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// Without a pattern in the schemas the generated file neither declares
// nor imports one (an unused import would not compile).
func TestSource_noPattern(t *testing.T) {
	src, err := Source(edit(t, false, func(g, _ map[string]any) { delete(prop(g, "template_snapshot_name"), "pattern") })...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(src), "regexp") {
		t.Errorf("generated source mentions regexp without a pattern:\n%s", src)
	}
}

func TestLowerFirst(t *testing.T) {
	for in, want := range map[string]string{"Spec": "spec", "IDMap": "idMap", "HealthCheck": "healthCheck", "ID": "id"} {
		if got := lowerFirst(in); got != want {
			t.Errorf("lowerFirst(%q) = %q, want %q", in, got, want)
		}
	}
}
