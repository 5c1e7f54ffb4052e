package desired

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func ids(xs ...int) []api.ID {
	out := make([]api.ID, len(xs))
	for i, x := range xs {
		out[i] = api.ID(x)
	}
	return out
}

func TestConfig_Closure(t *testing.T) {
	ref := mustLoad(t, refLab(t))
	example := mustLoad(t, "../../config/examples/lab")
	tests := []struct {
		name    string
		cfg     *api.Config
		targets []api.ID
		follow  func(api.Edge) bool
		want    []api.ID
	}{
		{"seed chain", ref, ids(941), nil, ids(900, 901, 921, 953, 941)},
		{"two targets share a chain", ref, ids(941, 950), nil, ids(900, 901, 921, 953, 941, 920, 950)},
		{"clone source before dependencies", ref, ids(956), nil, ids(900, 902, 953, 901, 955, 956)},
		{"runtime edges only", ref, ids(956), api.RuntimeOnly, ids(953, 955, 956)},
		{"vm chain", ref, ids(8001), nil, ids(8000, 8001)},
		{"lxc depends on vm", example, ids(954), nil, ids(900, 902, 953, 8000, 8002, 954)},
		{"vm depends on lxc", example, ids(8001), nil, ids(8000, 900, 953, 902, 952, 8001)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Closure(tt.targets, tt.follow); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Closure(%v) = %v, want %v", tt.targets, got, tt.want)
			}
		})
	}
}

func TestConfig_Order(t *testing.T) {
	for _, dir := range []string{refLab(t), "../../config/examples/lab"} {
		c := mustLoad(t, dir)
		order := c.Order()
		if len(order) != len(c.IDs) {
			t.Fatalf("%s: order has %d guests, want %d", dir, len(order), len(c.IDs))
		}
		pos := map[api.ID]int{}
		for i, id := range order {
			pos[id] = i
		}
		for _, id := range order {
			for _, e := range c.Edges(c.Guest(id)) {
				if pos[e.To] > pos[id] {
					t.Errorf("%s: %s comes before %s, which it needs", dir, id, e.To)
				}
			}
		}
	}
}

func TestConfig_Dependents(t *testing.T) {
	c := mustLoad(t, refLab(t))
	if got, want := c.Dependents(921), ids(941); !reflect.DeepEqual(got, want) {
		t.Errorf("Dependents(921) = %v, want %v", got, want)
	}
	if got, want := c.Dependents(953), ids(910, 941, 950, 951, 952, 954, 955, 956, 957, 960); !reflect.DeepEqual(got, want) {
		t.Errorf("Dependents(953) = %v, want %v", got, want)
	}
}

func TestLoad_cycles(t *testing.T) {
	tests := []struct {
		name string
		lxc  string
		vm   string
		want string
	}{
		{"two", `{"lxc_configs": {"900": {"name":"a","template":"t","dependencies":["901"]}, "901": {"name":"b","template":"t","dependencies":["900"]}}}`, "", "cycle: 900 -> 901 -> 900"},
		{"clone loop", `{"lxc_configs": {"900": {"name":"a","clone_from_ctid":"902"}, "901": {"name":"b","clone_from_ctid":"900"}, "902": {"name":"c","clone_from_ctid":"901"}}}`, "", "cycle: 900 -> 902 -> 901 -> 900"},
		{"cross kind", `{"lxc_configs": {"900": {"name":"a","template":"t","dependencies":[8000]}}}`, `{"vms": [{"vmid": 8000, "name": "v", "template_image": "i", "dependencies": ["900"]}]}`, "cycle: 900 -> 8000 -> 900"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, api.LXCFile), []byte(tt.lxc), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.vm != "" {
				if err := os.WriteFile(filepath.Join(dir, api.VMFile), []byte(tt.vm), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want %q", err, tt.want)
			}
		})
	}
}
