package fakepveapi

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func newACLCluster(t *testing.T, acl map[string][]string) *httptest.Server {
	t.Helper()
	c := New(Options{TokenID: testTokenID, Secret: testSecret, Permissions: acl,
		Volumes: map[string][]string{"local": {"local:vztmpl/debian-12.tar.zst", "local:import/noble.qcow2"}}})
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return srv
}

// GET /access/permissions answers as Proxmox does: path -> privilege -> 1,
// with a more specific ACL entry replacing what is inherited.
func TestPermissions(t *testing.T) {
	srv := newACLCluster(t, map[string][]string{"/": {"Sys.Audit"}, "/vms": {"VM.Audit", "VM.Allocate"}, "/vms/200": {"VM.Audit"}})
	tests := []struct {
		path string
		want map[string]any
	}{
		{"/vms/100", map[string]any{"VM.Audit": 1.0, "VM.Allocate": 1.0}},
		{"/vms/200", map[string]any{"VM.Audit": 1.0}},
		{"/storage/local", map[string]any{"Sys.Audit": 1.0}},
	}
	for _, tt := range tests {
		status, doc := call(t, srv, "GET", "/access/permissions?path="+url.QueryEscape(tt.path), nil)
		got := doc["data"].(map[string]any)[tt.path]
		if !strings.HasPrefix(status, "200") || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %s %v, want %v", tt.path, status, got, tt.want)
		}
	}
	// Without a path: every path of the ACL.
	_, doc := call(t, srv, "GET", "/access/permissions", nil)
	if all := doc["data"].(map[string]any); len(all) != 3 || all["/vms/200"] == nil {
		t.Errorf("whole tree: %v", all)
	}
	// Someone else's permissions need Sys.Audit on /access: it inherits / here.
	if status, _ := call(t, srv, "GET", "/access/permissions?userid=bob@pve", nil); !strings.HasPrefix(status, "200") {
		t.Errorf("other user with Sys.Audit on /: %s", status)
	}
}

// A token sees only the storages it may, and creates only where it holds
// VM.Allocate; an ostemplate the storage does not hold is refused.
func TestPermissionsRestrictTheToken(t *testing.T) {
	srv := newACLCluster(t, map[string][]string{"/vms/100": {"VM.Allocate"}, "/storage/local": {"Datastore.AllocateSpace"}})
	_, doc := call(t, srv, "GET", "/nodes/pve1/storage", nil)
	if list := doc["data"].([]any); len(list) != 1 || list[0].(map[string]any)["storage"] != "local" {
		t.Errorf("storage list: %v", list)
	}
	if status, _ := call(t, srv, "GET", "/nodes/pve1/storage/local-zfs/content", nil); !strings.HasPrefix(status, "403 Permission check failed (/storage/local-zfs") {
		t.Errorf("content of a storage the token may not see: %s", status)
	}
	_, doc = call(t, srv, "GET", "/nodes/pve1/storage/local/content?content=vztmpl", nil)
	if list := doc["data"].([]any); len(list) != 1 || list[0].(map[string]any)["volid"] != "local:vztmpl/debian-12.tar.zst" {
		t.Errorf("vztmpl content: %v", list)
	}
	form := url.Values{"vmid": {"101"}, "ostemplate": {"local:vztmpl/debian-12.tar.zst"}, "unprivileged": {"1"}}
	if status, _ := call(t, srv, "POST", "/nodes/pve1/lxc", form); !strings.HasPrefix(status, "403 Permission check failed (/vms/101, VM.Allocate)") {
		t.Errorf("create without VM.Allocate: %s", status)
	}
	form.Set("vmid", "100")
	form.Set("ostemplate", "local:vztmpl/gone.tar.zst")
	if status, _ := call(t, srv, "POST", "/nodes/pve1/lxc", form); !strings.Contains(status, "volume 'local:vztmpl/gone.tar.zst' does not exist") {
		t.Errorf("create from a missing template: %s", status)
	}
}

// GET /nodes/{node}/network lists the bridges and filters by type.
func TestNetwork(t *testing.T) {
	srv := newACLCluster(t, nil)
	_, doc := call(t, srv, "GET", "/nodes/pve1/network?type=any_bridge", nil)
	list := doc["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["iface"] != "vmbr0" || list[0].(map[string]any)["type"] != "bridge" {
		t.Errorf("bridges: %v", list)
	}
	_, doc = call(t, srv, "GET", "/nodes/pve1/network", nil)
	if len(doc["data"].([]any)) != 2 {
		t.Errorf("all interfaces: %v", doc["data"])
	}
}

// A guest the token may not audit is missing from /cluster/resources and
// its endpoints answer 403, whether NoAudit or the ACL says so.
func TestPermissionsHideGuests(t *testing.T) {
	c := New(Options{TokenID: testTokenID, Secret: testSecret, Permissions: map[string][]string{"/vms/100": {"VM.Allocate", "VM.Audit"}}})
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	for _, id := range []string{"100", "101"} {
		// Created through the cluster's own state: the token may not create 101.
		c.mu.Lock()
		n := map[string]int{"100": 100, "101": 101}[id]
		c.guests[n] = &Guest{VMID: n, Type: "lxc", Node: "pve1", Config: map[string]string{"hostname": "g" + id}}
		c.mu.Unlock()
	}
	_, doc := call(t, srv, "GET", "/cluster/resources?type=vm", nil)
	if list := doc["data"].([]any); len(list) != 1 || list[0].(map[string]any)["vmid"] != 100.0 {
		t.Errorf("resources: %v", list)
	}
	if status, _ := call(t, srv, "GET", "/nodes/pve1/lxc/101/config", nil); !strings.HasPrefix(status, "403") {
		t.Errorf("config of 101: %s", status)
	}
}
