package fakepveapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testTokenID = "root@pam!phoenix"
	testSecret  = "11111111-2222-3333-4444-555555555555"
)

func newTestCluster(t *testing.T) (*Cluster, *httptest.Server) {
	t.Helper()
	// Tasks long enough that a test sees their locks, even under -race.
	c := New(Options{TokenID: testTokenID, Secret: testSecret, LocalStorages: []string{"local-lvm"}, TaskDuration: 200 * time.Millisecond})
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c, srv
}

// call does one request and returns the status line and the decoded body.
func call(t *testing.T, srv *httptest.Server, method, path string, form url.Values) (string, map[string]any) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, srv.URL+"/api2/json"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"="+testSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	json.NewDecoder(res.Body).Decode(&doc)
	return res.Status, doc
}

func waitTask(t *testing.T, srv *httptest.Server, node, upid string) string {
	t.Helper()
	for range 1000 {
		_, doc := call(t, srv, "GET", "/nodes/"+node+"/tasks/"+upid+"/status", nil)
		st := doc["data"].(map[string]any)
		if st["status"] == "stopped" {
			return st["exitstatus"].(string)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("task never finished")
	return ""
}

func TestCluster_createCloneAndErrors(t *testing.T) {
	c, srv := newTestCluster(t)

	status, doc := call(t, srv, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"900"}, "ostemplate": {"local:vztmpl/u.tar.zst"},
		"rootfs": {"shared:8"}, "hostname": {"base"}})
	if status != "200 OK" {
		t.Fatalf("create: %s %v", status, doc)
	}
	upid := doc["data"].(string)
	if !strings.HasPrefix(upid, "UPID:pve1:") {
		t.Fatalf("upid %q", upid)
	}
	// Locked while the create task runs.
	if g := c.Guest(900); g == nil || g.Lock != "create" {
		t.Fatalf("guest during create: %+v", g)
	}
	if got := waitTask(t, srv, "pve1", upid); got != "OK" {
		t.Fatalf("create task: %s", got)
	}

	status, _ = call(t, srv, "GET", "/nodes/pve2/lxc/900/status/current", nil)
	if status != "500 Configuration file 'nodes/pve2/lxc/900.conf' does not exist" {
		t.Errorf("wrong node: %s", status)
	}
	status, doc = call(t, srv, "PUT", "/nodes/pve1/lxc/900/config", url.Values{"lxc.apparmor.profile": {"unconfined"}})
	if !strings.HasPrefix(status, "400 ") || doc["errors"] == nil {
		t.Errorf("raw key: %s %v", status, doc)
	}

	_, doc = call(t, srv, "POST", "/nodes/pve1/lxc/900/clone", url.Values{"newid": {"901"}, "hostname": {"gpu"}, "target": {"pve2"}})
	upid = doc["data"].(string)
	status, _ = call(t, srv, "POST", "/nodes/pve1/lxc/900/status/start", nil)
	if status != "500 CT is locked (disk)" {
		t.Errorf("start of a clone source: %s", status)
	}
	waitTask(t, srv, "pve1", upid)
	g := c.Guest(901)
	if g == nil || g.Node != "pve2" || g.Config["hostname"] != "gpu" || g.Config["rootfs"] != "shared:subvol-901-disk-0,size=8G" {
		t.Fatalf("clone: %+v", g)
	}

	c.FailTask(TaskFault{Type: "vzstart", VMID: 901, ExitStatus: "startup for container '901' failed"})
	_, doc = call(t, srv, "POST", "/nodes/pve2/lxc/901/status/start", nil)
	if got := waitTask(t, srv, "pve2", doc["data"].(string)); got != "startup for container '901' failed" {
		t.Errorf("failed task exit status %q", got)
	}
	if c.Guest(901).Running {
		t.Error("a failed start started the guest")
	}
}

func TestCluster_crossNodeCloneNeedsSharedStorage(t *testing.T) {
	c, srv := newTestCluster(t)
	c.AddGuest(Guest{VMID: 100, Type: "qemu", Node: "pve1", Config: map[string]string{"scsi0": "local-lvm:vm-100-disk-0,size=3G"}})
	status, _ := call(t, srv, "POST", "/nodes/pve1/qemu/100/clone", url.Values{"newid": {"101"}, "target": {"pve3"}})
	if !strings.Contains(status, "local storage 'local-lvm'") {
		t.Errorf("status %q", status)
	}
}

func TestCluster_badTokenIs401(t *testing.T) {
	_, srv := newTestCluster(t)
	req, _ := http.NewRequest("GET", srv.URL+"/api2/json/version", nil)
	req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"=wrong")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Status != "401 No ticket" {
		t.Errorf("status %q", res.Status)
	}
}

func TestCluster_downNodeHangsAndHidesStatus(t *testing.T) {
	c, srv := newTestCluster(t)
	c.AddGuest(Guest{VMID: 200, Type: "lxc", Node: "pve3", Running: true})
	c.SetNodeDown("pve3", true)
	_, doc := call(t, srv, "GET", "/cluster/resources?type=vm", nil)
	if st := doc["data"].([]any)[0].(map[string]any)["status"]; st != "unknown" {
		t.Errorf("status of a guest on a down node: %v", st)
	}
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("GET", srv.URL+"/api2/json/nodes/pve3/lxc/200/status/current", nil)
	req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"="+testSecret)
	if _, err := client.Do(req); err == nil {
		t.Error("a down node answered")
	}
}

func TestSplitShell(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"pct exec 941 -- sh -c 'echo hi'", []string{"pct", "exec", "941", "--", "sh", "-c", "echo hi"}},
		{`a 'it'\''s' "x\"y" b\ c`, []string{"a", "it's", `x"y`, "b c"}},
		{"  ", nil},
	}
	for _, tt := range tests {
		got, err := splitShell(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitShell(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// What a real shell would act on is refused, never taken literally: a
	// line holding it is a quoting bug in phoenix.
	for _, in := range []string{
		"pct exec 1 -- true; rm -rf /", "echo $(id)", "echo `id`", `echo "$HOME"`, "echo a|b", "echo a&", "echo >f",
		"echo *", "echo ~", "echo a\nb", "echo {a,b}", "! true", "echo # c", "FOO=bar cmd", "a=b",
	} {
		if got, err := splitShell(in); err == nil {
			t.Errorf("splitShell(%q) = %q; want it refused", in, got)
		}
	}
	for in, want := range map[string][]string{
		"'FOO=bar' cmd": {"FOO=bar", "cmd"},
		"cmd a=b":       {"cmd", "a=b"},
		"'a;b' '$x'":    {"a;b", "$x"},
		"'a\nb'":        {"a\nb"},
	} {
		if got, err := splitShell(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitShell(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestCluster_tokenIsNeverRoot: the fake is reached with a token, and
// refuses what Proxmox lets only the user root@pam do, with Proxmox's
// status and message.
func TestCluster_tokenIsNeverRoot(t *testing.T) {
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"template by path", url.Values{"ostemplate": {"/var/lib/vz/template/cache/u.tar.zst"}},
			"500 Only root can pass arbitrary filesystem paths."},
		{"device passthrough", url.Values{"unprivileged": {"1"}, "dev0": {"/dev/dri/renderD128"}},
			"403 Permission check failed (configuring device passthrough is only allowed for root@pam)"},
		{"features beyond nesting", url.Values{"unprivileged": {"1"}, "features": {"nesting=1,keyctl=1"}},
			"403 Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)"},
		{"any feature of a privileged container", url.Values{"features": {"nesting=1"}},
			"403 Permission check failed (changing feature flags for privileged container is only allowed for root@pam)"},
		{"nesting on an unprivileged container", url.Values{"unprivileged": {"1"}, "features": {"nesting=1"}}, "200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newTestCluster(t)
			p := url.Values{"vmid": {"900"}, "ostemplate": {"local:vztmpl/u.tar.zst"}}
			for k, v := range tt.params {
				p[k] = v
			}
			status, _ := call(t, srv, "POST", "/nodes/pve1/lxc", p)
			if status != tt.want {
				t.Errorf("status %q, want %q", status, tt.want)
			}
			if (c.Guest(900) != nil) != (tt.want == "200 OK") {
				t.Errorf("guest made: %v", c.Guest(900) != nil)
			}
		})
	}
}

// TestCluster_noAuditHidesGuests: a guest the token may not audit is
// missing from /cluster/resources and its endpoints answer 403.
func TestCluster_noAuditHidesGuests(t *testing.T) {
	c := New(Options{TokenID: testTokenID, Secret: testSecret, NoAudit: []int{901}})
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	c.AddGuest(Guest{VMID: 900, Type: "lxc", Node: "pve1"})
	c.AddGuest(Guest{VMID: 901, Type: "lxc", Node: "pve1"})
	_, doc := call(t, srv, "GET", "/cluster/resources?type=vm", nil)
	var ids []float64
	for _, e := range doc["data"].([]any) {
		ids = append(ids, e.(map[string]any)["vmid"].(float64))
	}
	if !reflect.DeepEqual(ids, []float64{900}) {
		t.Errorf("listed %v, want only 900", ids)
	}
	if status, _ := call(t, srv, "GET", "/nodes/pve1/lxc/901/config", nil); status != "403 Permission check failed (/vms/901, VM.Audit)" {
		t.Errorf("config of 901: %s", status)
	}
}
