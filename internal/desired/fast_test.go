package desired

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// slowSpec is what loading did before the fast path: the schema check of
// the guest, then encoding/json.
func slowSpec(t testing.TB, raw []byte, schema schemaName) (api.Spec, bool) {
	all, err := schemas()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeAny(raw)
	if err != nil {
		return api.Spec{}, false
	}
	var ps problems
	if schemaProblems(&ps, "f", all[schema], doc, nil) > 0 {
		return api.Spec{}, false
	}
	var s api.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return api.Spec{}, false
	}
	return s, true
}

// checkFast holds fastSpec to its promise: when it says ok, the schema
// check passes and encoding/json decodes the same Spec.
func checkFast(t *testing.T, raw []byte) {
	t.Helper()
	var fast api.Spec
	if !fastSpec(raw, &fast) {
		return
	}
	for _, sch := range []schemaName{guestSchemaLXC, guestSchemaVM} {
		wrapped := raw
		if sch == guestSchemaVM {
			// The VM item schema also wants a vmid.
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil {
				t.Fatalf("fast path accepted a non-object: %s", raw)
			}
			m["vmid"] = json.RawMessage("123")
			wrapped, _ = json.Marshal(m)
		}
		slow, ok := slowSpec(t, wrapped, sch)
		if !ok {
			t.Fatalf("fast path accepted what %s refuses: %s", sch, raw)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path decoded %s\n as %+v\nwant %+v", raw, fast, slow)
		}
	}
}

var mutations = []string{`null`, `"x"`, `""`, `0`, `-1`, `1`, `7`, `1.5`, `1e2`, `1.0`, `true`, `false`, `[]`, `{}`,
	`["a"]`, `[1]`, `["12"]`, `[12, "13"]`, `"12"`, `12`, `{"a":1}`, `{"a":"b"}`, `"a\"b"`, `"\u0041"`, `"snap-1"`,
	`"1snap"`, `[{"name":"v","pool":"p","size_gb":2,"mount_point":"/m"}]`, `[{"size_gb":0}]`, `[{"Size_GB":3}]`,
	`{"command":"true","retries":1,"interval":0}`, `{"retries":-1}`, `{"ip":"dhcp","gw":"10.0.0.1","nameservers":["1.1.1.1"]}`,
	`{"nameservers":"x"}`, `{"nameservers":"1.1.1.1, 8.8.8.8 9.9.9.9"}`, `{"nameserver":"10.0.0.13"}`, `{"nameservers":null}`,
	`[{"host_path":"/a","container_path":"/b","owner_uid":33,"owner_gid":0}]`, `[{"host_path":"/a","owner_uid":-1}]`,
	`[{"host_path":null}]`, `[{"owner_uid":"33"}]`, `[{"type":"uid","container_id":0,"host_id":100000,"size":65536}]`,
	`[{"type":"nfs","name":"p","path":"/x","mount_point":"/y","server":"10.0.0.1"}]`, `{"enabled":true,"rules":[{"type":"in","action":"ACCEPT"}]}`,
	`{"enabled":null}`, `{"enabled":true,"rules":[{"type":1}]}`, `{"Enabled":true}`, `{"rules":[{"type":"in","Type":"out"}]}`,
	`[{"host_path":"/a","host_path":"/b"}]`, `[{"size":1.0}]`, `[{"owner_gid":"0"}]`, `{"enabled":false,"rules":null}`, `[{"size":-1}]`, `{"Name":"eth0"}`, `{"name":"eth0","name":"eth1"}`, `99999999999999999999`, `-0`}

func guestObjects(t *testing.T) [][]byte {
	var out [][]byte
	for _, dir := range []string{"../../testdata/reference-lab", "../../config/examples/lab", "../../testdata/small"} {
		c, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range c.IDs {
			out = append(out, c.Guest(id).Raw)
		}
	}
	return out
}

func TestFastSpec_agreesWithSchemaAndDecoder(t *testing.T) {
	for i, raw := range guestObjects(t) {
		var fast api.Spec
		if !fastSpec(raw, &fast) {
			t.Errorf("fast path refused a valid guest of a lab: %s", raw)
		}
		checkFast(t, raw)
		// Every field mutated on every guest takes ~25 s; -short (make mutate
		// runs each mutant with it) mutates the first few guests only.
		if testing.Short() && i >= 3 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		keys := append([]string{}, specFields.names...)
		sort.Strings(keys)
		for _, k := range append(keys, "Name", "MEMORY_MB", "unknown", "vmid") {
			for _, v := range mutations {
				mm := make(map[string]json.RawMessage, len(m)+1)
				for k2, v2 := range m {
					mm[k2] = v2
				}
				mm[k] = json.RawMessage(v)
				b, _ := json.Marshal(mm)
				checkFast(t, b)
			}
		}
	}
	for _, raw := range []string{`{"name":"a","name":"b"}`, `{"annotations":{"a":"1","a":"2"}}`, `{"nam\u0065":"x"}`,
		`{"ſwap_mb":1}`, `{"unknown":null}`, `{}`, `{"user_config":{"a":[1,{"b":null}]}}`,
		// Case variants encoding/json takes for a field: A and Z, the ends
		// of the range folded, and a key without any lower-case letter.
		`{"nAme":"x"}`, `{"Zfs_volumes":[]}`, `{"CORES":3}`} {
		checkFast(t, []byte(raw))
	}
}

// FuzzFastSpec: fastSpec never says ok where the slow path disagrees.
func FuzzFastSpec(f *testing.F) {
	f.Add([]byte(`{"name":"a","memory_mb":512,"dependencies":["101",102]}`))
	f.Add([]byte(`{"network_config":{"ip":"dhcp"},"volumes":[{"size_gb":1}]}`))
	f.Add([]byte(`{"firewall":{"enabled":true,"rules":[{"type":"in","action":"ACCEPT","port":"22"}]},"mount_points":[{"host_path":"/a","owner_uid":0}]}`))
	f.Add([]byte(`{"id_maps":[{"type":"uid","container_id":0,"host_id":100000,"size":65536}],"template_snapshot_name":"golden"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		checkFast(t, raw)
	})
}

// The fast path knows exactly the guest properties the schemas declare:
// a field added to a schema must be taught to fastSpec too.
func TestFastSpec_knowsEverySchemaProperty(t *testing.T) {
	for _, name := range []string{"phoenix_lxc_configs.schema.json", "phoenix_vm_configs.schema.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "config", "schemas", name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytesReader(data))
		if err != nil {
			t.Fatal(err)
		}
		guest := doc.(map[string]any)["$defs"].(map[string]any)["guest"].(map[string]any)
		props := guest["properties"].(map[string]any)
		for k := range props {
			if _, ok := specFields.index[k]; !ok {
				t.Errorf("%s: guest property %q is unknown to fastSpec", name, k)
			}
		}
		for _, k := range specFields.names {
			if _, ok := props[k]; !ok {
				t.Errorf("%s: fastSpec checks %q, which the schema does not declare", name, k)
			}
		}
		for _, nested := range []struct {
			prop string
			fold map[string]bool
		}{{"network_config", networkConfigFields.fold}} {
			for k := range props[nested.prop].(map[string]any)["properties"].(map[string]any) {
				if !nested.fold[k] {
					t.Errorf("%s: %s.%s is unknown to fastSpec", name, nested.prop, k)
				}
			}
		}
		for def, fold := range map[string]map[string]bool{"volume": volumeFields.fold, "health_check": healthCheckFields.fold} {
			d := doc.(map[string]any)["$defs"].(map[string]any)[def].(map[string]any)
			for k := range d["properties"].(map[string]any) {
				if !fold[k] {
					t.Errorf("%s: %s.%s is unknown to fastSpec", name, def, k)
				}
			}
		}
		if _, ok := guest["required"]; ok {
			t.Errorf("%s: the guest schema requires fields; fastSpec does not check that", name)
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// marshalRawMap and rawMembers are json.Marshal and json.Unmarshal of a
// map[string]json.RawMessage, byte for byte.
func TestRawMapHelpers_matchEncodingJSON(t *testing.T) {
	objs := guestObjects(t)
	objs = append(objs, []byte(`{"a": [1, 2 ,3], "b":"<&>\u2028", "c" : {"x" : " y "}, "a":"dup", "k\u00e9y":"\u00e9", "<k>":1, "t\u0009ab":1, "\u001f":2, "sp ace":3, "del\u007f":4,
		"\"":5, "\\":6, "<":7, ">":8, "&":9, "\u2028":10}`),
		[]byte(`null`), []byte(`{}`), []byte("{\"s\":\"\u2028 \u2029\",\"t\":\"é\"}"))
	for _, raw := range objs {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(raw, &want)
		got, ok := rawMembers(raw)
		if (wantErr == nil) != ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("rawMembers(%s) = %v, %v; want %v, %v", raw, got, ok, want, wantErr)
		}
		if want == nil {
			continue
		}
		wantB, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if gotB := marshalRawMap(want); !bytes.Equal(gotB, wantB) {
			t.Fatalf("marshalRawMap:\n got %s\nwant %s", gotB, wantB)
		}
	}
	for _, bad := range []string{`1`, `"s"`, `[]`} {
		if _, ok := rawMembers([]byte(bad)); ok {
			t.Errorf("rawMembers(%s) ok", bad)
		}
	}
}

// appendCompact is json.Compact on valid JSON.
func TestAppendCompact_matchesJSONCompact(t *testing.T) {
	objs := guestObjects(t)
	objs = append(objs, []byte(" { \"a\" : [ 1 , \"x y\\\" z\" ,{ } ] ,\n\t\"b\\\\\" : \"\\\\\" } "), []byte(`"  "`), []byte(` 1 `))
	for _, raw := range objs {
		var want bytes.Buffer
		if err := json.Compact(&want, raw); err != nil {
			t.Fatal(err)
		}
		if got := appendCompact(nil, raw); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendCompact(%s) = %s, want %s", raw, got, want.Bytes())
		}
	}
}

// Shapes that real files write take the fast path: each one left to the
// slow path would cost a schema check and encoding/json per guest, which
// is what the fast path saves at 10,000 guests (the results would be the
// same, so only this test sees it).
func TestFastSpec_takesCommonShapes(t *testing.T) {
	for _, raw := range []string{
		`{"name":"a"}`,                     // the shortest name the schema allows
		`{"node":""}`,                      // an empty string where any string goes
		`{"name":"a\"b \u00e9"}`,           // escapes
		`{"memory_mb":123456789012345678}`, // 18 digits
		`{"network_config":{"nameservers":"1.1.1.1 8.8.8.8"}}`,
		`{"network_config":{"nameservers":["1.1.1.1"]}}`,
		`{"user_config":{"a":[1,{"b":null}]}}`,
		`{"dependencies":["101",102]}`,
	} {
		var s api.Spec
		if !fastSpec([]byte(raw), &s) {
			t.Errorf("fast path left %s to the slow path", raw)
		}
		checkFast(t, []byte(raw))
	}
}
