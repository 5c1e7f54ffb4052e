package controller_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
)

// TestRequestConverge_keepsLayout annotates files written in different
// styles: the new key must be indented and spaced like its neighbours, and
// nothing else may change.
func TestRequestConverge_keepsLayout(t *testing.T) {
	tests := []struct {
		name, kind, in, want string
	}{
		{
			name: "four spaces, no annotations yet",
			kind: "lxc",
			in: `{
    "lxc_configs": {
        "941": {
            "name": "granite",
            "memory_mb": 1024
        }
    }
}
`,
			want: `{
    "lxc_configs": {
        "941": {
            "name": "granite",
            "memory_mb": 1024,
            "annotations": {
                "converge.phoenix.io/requestedAt": "TOKEN"
            }
        }
    }
}
`,
		},
		{
			name: "two spaces, annotations without the key",
			kind: "lxc",
			in: `{
  "lxc_configs": {
    "941": {
      "name": "granite",
      "annotations": {
        "team": "ml"
      }
    }
  }
}
`,
			want: `{
  "lxc_configs": {
    "941": {
      "name": "granite",
      "annotations": {
        "team": "ml",
        "converge.phoenix.io/requestedAt": "TOKEN"
      }
    }
  }
}
`,
		},
		{
			name: "tabs, a VM in the vms array",
			kind: "vm",
			in:   "{\n\t\"vms\": [\n\t\t{\n\t\t\t\"vmid\": 8000\n\t\t},\n\t\t{\n\t\t\t\"vmid\": 941,\n\t\t\t\"name\": \"db\"\n\t\t}\n\t]\n}\n",
			want: "{\n\t\"vms\": [\n\t\t{\n\t\t\t\"vmid\": 8000\n\t\t},\n\t\t{\n\t\t\t\"vmid\": 941,\n\t\t\t\"name\": \"db\",\n\t\t\t\"annotations\": {\n\t\t\t\t\"converge.phoenix.io/requestedAt\": \"TOKEN\"\n\t\t\t}\n\t\t}\n\t]\n}\n",
		},
		{
			name: "compact",
			kind: "lxc",
			in:   `{"lxc_configs":{"941":{"name":"granite"}}}`,
			want: `{"lxc_configs":{"941":{"name":"granite","annotations":{"converge.phoenix.io/requestedAt":"TOKEN"}}}}`,
		},
		{
			name: "a token already there is replaced in place",
			kind: "lxc",
			in: `{
    "lxc_configs": {
        "941": {
            "annotations": {
                "converge.phoenix.io/requestedAt": "old"
            },
            "name": "granite"
        }
    }
}`,
			want: `{
    "lxc_configs": {
        "941": {
            "annotations": {
                "converge.phoenix.io/requestedAt": "TOKEN"
            },
            "name": "granite"
        }
    }
}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "guests.json")
			if err := os.WriteFile(file, []byte(tt.in), 0o640); err != nil {
				t.Fatal(err)
			}
			g := &api.Guest{ID: 941, Kind: api.Kind(tt.kind), File: file}
			if err := controller.RequestConverge([]*api.Guest{g}, "TOKEN"); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("annotated file:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
