package pveapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

var update = flag.Bool("update", false, "rewrite testdata/answers/decoded.golden")

// answerKind is one kind of answer phoenix reads, with the endpoint it
// comes from and how it is decoded, as the Host decodes it.
type answerKind struct {
	// file is the name of the recorded answer in testdata/answers/<version>/.
	file     string
	method   string
	endpoint string
	decode   func(method, path string, body []byte) (string, error)
}

// decodeAs decodes an answer as the client does, into a T.
func decodeAs[T any](summary func(*T) string) func(string, string, []byte) (string, error) {
	return func(method, path string, body []byte) (string, error) {
		var v T
		if err := decodeAnswer(method, path, "application/json", body, &v); err != nil {
			return "", err
		}
		return summary(&v), nil
	}
}

// answerKinds lists every endpoint phoenix calls.
var answerKinds = []answerKind{
	{"cluster_resources", "GET", "/cluster/resources", decodeAs(func(l *resourceList) string {
		var b []string
		for _, r := range *l {
			if r.Type == "lxc" || r.Type == "qemu" {
				b = append(b, fmt.Sprintf("%s/%d@%s:%s:t%d", r.Type, r.VMID, r.Node, r.Status, r.Template))
			}
		}
		return strings.Join(b, " ")
	})},
	{"nodes", "GET", "/nodes", decodeAs(func(l *nodeList) string {
		var b []string
		for _, n := range *l {
			b = append(b, n.Node+":"+n.Status)
		}
		return strings.Join(b, " ")
	})},
	{"cluster_status", "GET", "/cluster/status", decodeAs(func(l *clusterStatus) string {
		var b []string
		for _, e := range *l {
			if e.Type == "node" {
				b = append(b, e.Name+"="+e.IP)
			}
		}
		return strings.Join(b, " ")
	})},
	{"lxc_status_current", "GET", "/nodes/node1/lxc/101/status/current", decodeAs(func(s *guestStatus) string { return *s.Status })},
	{"qemu_status_current", "GET", "/nodes/node1/qemu/101/status/current", decodeAs(func(s *guestStatus) string { return *s.Status })},
	{"lxc_config", "GET", "/nodes/node1/lxc/101/config", decodeAs(configSummary)},
	{"qemu_config", "GET", "/nodes/node1/qemu/101/config", decodeAs(configSummary)},
	{"lxc_snapshot", "GET", "/nodes/node1/lxc/101/snapshot", decodeAs(snapshotNames)},
	{"qemu_snapshot", "GET", "/nodes/node1/qemu/100/snapshot", decodeAs(snapshotNames)},
	{"task_status_running", "GET", "/nodes/node1/tasks/UPID/status", decodeAs(taskSummary)},
	{"task_status_ok", "GET", "/nodes/node1/tasks/UPID/status", decodeAs(taskSummary)},
	{"task_status_failed", "GET", "/nodes/node1/tasks/UPID/status", decodeAs(taskSummary)},
	{"lxc_create", "POST", "/nodes/node1/lxc", decodeAs(upidSummary)},
	{"qemu_create", "POST", "/nodes/node1/qemu", decodeAs(upidSummary)},
	{"lxc_clone", "POST", "/nodes/node1/lxc/101/clone", decodeAs(upidSummary)},
	{"lxc_start", "POST", "/nodes/node1/lxc/101/status/start", decodeAs(upidSummary)},
	{"lxc_template", "POST", "/nodes/node1/lxc/101/template", decodeAs(upidSummary)},
	{"lxc_put_config", "PUT", "/nodes/node1/lxc/101/config", decodeAs(upidSummary)},
	{"lxc_shutdown", "POST", "/nodes/node1/lxc/101/status/shutdown", decodeAs(upidSummary)},
	{"qemu_start", "POST", "/nodes/node1/qemu/100/status/start", decodeAs(upidSummary)},
	{"lxc_snapshot_create", "POST", "/nodes/node1/lxc/101/snapshot", decodeAs(upidSummary)},
	{"lxc_destroy", "DELETE", "/nodes/node1/lxc/101", decodeAs(upidSummary)},
	{"qemu_template", "POST", "/nodes/node1/qemu/101/template", decodeAs(upidSummary)},
	{"lxc_resize", "PUT", "/nodes/node1/lxc/100/resize", decodeAs(upidSummary)},
	{"qemu_resize", "PUT", "/nodes/node1/qemu/101/resize", decodeAs(upidSummary)},
	{"agent_ping", "POST", "/nodes/node1/qemu/101/agent/ping", decodeAs(func(*map[string]json.RawMessage) string { return "answered" })},
	{"agent_exec", "POST", "/nodes/node1/qemu/101/agent/exec", decodeAs(func(a *agentStarted) string {
		if a.PID == nil {
			return "no pid"
		}
		return fmt.Sprint("pid ", int(*a.PID))
	})},
	{"agent_exec_status", "GET", "/nodes/node1/qemu/101/agent/exec-status", decodeAs(func(s *guest.ExecStatus) string {
		exited := 0
		if s.Exited {
			exited = 1
		}
		return fmt.Sprintf("exited %d %q", exited, s.Output)
	})},
}

func configSummary(c *guestConfig) string {
	keys := sortedKeys(*c)
	for i, k := range keys {
		keys[i] = k + "=" + strings.ReplaceAll((*c)[k], "\n", `\n`)
	}
	return strings.Join(keys, " ")
}

func snapshotNames(l *snapshotList) string {
	var b []string
	for _, s := range *l {
		b = append(b, s.Name)
	}
	return strings.Join(b, " ")
}

func taskSummary(s *taskStatus) string {
	if s.ExitStatus != nil {
		return *s.Status + " " + *s.ExitStatus
	}
	return *s.Status
}

func upidSummary(t *taskID) string {
	if t.raw == "" {
		return "no task"
	}
	return "task " + t.typ + " on " + t.node
}

// TestAnswers_recordedFromRealVersions decodes answers of Proxmox VE 7, 8
// and 9 for every endpoint phoenix calls and compares what phoenix reads
// from them with decoded.golden (go test -update rewrites it).
func TestAnswers_recordedFromRealVersions(t *testing.T) {
	var out bytes.Buffer
	for _, v := range []string{"pve7", "pve8", "pve9"} {
		for _, k := range answerKinds {
			body, err := os.ReadFile(filepath.Join("testdata/answers", v, k.file+".json"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.decode(k.method, k.endpoint, body)
			if err != nil {
				got = "error: " + err.Error()
			}
			fmt.Fprintf(&out, "%s %s: %s\n", v, k.file, got)
		}
	}
	golden := "testdata/answers/decoded.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("decoded answers differ from %s (go test -run %s -update):\n%s", golden, t.Name(), out.String())
	}
	// Every endpoint has a recorded answer of at least one version.
	for _, k := range answerKinds {
		if !strings.Contains(out.String(), " "+k.file+": ") {
			t.Errorf("no recorded answer for %s %s", k.method, k.endpoint)
		}
	}
}

// replay serves recorded answers of one version by endpoint.
func replay(t *testing.T, version string, routes map[string]string) *Host {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/api2/json")
		for pat, file := range routes {
			if regexp.MustCompile("^" + pat + "$").MatchString(key) {
				body, err := os.ReadFile(filepath.Join("testdata/answers", version, file+".json"))
				if err != nil {
					t.Error(err)
				}
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				w.Write(body)
				return
			}
		}
		w.WriteHeader(http.StatusNotImplemented)
	}))
	t.Cleanup(srv.Close)
	h, err := New(Options{URL: srv.URL, Token: Token{ID: testTokenID, secret: testSecret}, Timeout: 2 * time.Second,
		TaskPoll: time.Millisecond, Retries: -1, DefaultNode: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAnswers_hostReadsAndDrivesRecordedVersions runs Get and Start
// against recorded answers of PVE 8 and 9 end to end.
func TestAnswers_hostReadsAndDrivesRecordedVersions(t *testing.T) {
	for _, v := range []string{"pve8", "pve9"} {
		t.Run(v, func(t *testing.T) {
			h := replay(t, v, map[string]string{
				"GET /cluster/resources":                     "cluster_resources",
				"GET /nodes/node1/qemu/101/status/current":   "qemu_status_current",
				"GET /nodes/node1/qemu/101/config":           "qemu_config",
				"GET /nodes/node1/qemu/101/snapshot":         "qemu_snapshot",
				"GET /nodes/node1/qemu/101/firewall/options": "qemu_firewall_options",
				"GET /nodes/node1/qemu/101/firewall/rules":   "qemu_firewall_rules",
				"POST /nodes/node1/qemu/102/status/start":    "lxc_start",
				"GET /nodes/node1/tasks/.*/status":           "task_status_ok",
			})
			g, err := h.Get(ctx, api.KindVM, 101)
			if err != nil {
				t.Fatal(err)
			}
			// The recorded status says running (the list's "stopped" is
			// older: the list lags), config and snapshots are read.
			if !g.Running || len(g.Config) == 0 || len(g.Snapshots) == 0 || slices.Contains(g.Snapshots, "current") {
				t.Errorf("guest read as %+v", g)
			}
			if err := h.Start(ctx, api.KindVM, 102); err != nil {
				t.Errorf("start: %v", err)
			}
			if _, err := h.Get(ctx, api.KindVM, 555); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("guest not in the list: %v", err)
			}
		})
	}
}

// TestAnswers_malformed feeds answers no Proxmox should send; every one
// ends in an error naming the endpoint, none in a panic or a wrong guest.
func TestAnswers_malformed(t *testing.T) {
	const (
		res    = `{"data":[{"type":"lxc","vmid":100,"node":"pve1","status":"running"}]}`
		status = `{"data":{"status":"running"}}`
		cfg    = `{"data":{"hostname":"a","memory":512}}`
		snaps  = `{"data":[{"name":"current"}]}`
	)
	type answer struct {
		status int
		ctype  string
		body   string
		// slow writes the body a byte at a time, forever.
		slow bool
		// location is a redirect's target.
		location string
	}
	ok := func(body string) answer { return answer{status: 200, ctype: "application/json", body: body} }
	tests := []struct {
		name string
		// at is the endpoint that misbehaves; the others answer well.
		at      string
		answer  answer
		wantErr string
	}{
		{"resources without vmid", "/cluster/resources", ok(`{"data":[{"type":"lxc","node":"pve1"}]}`), "GET /cluster/resources: answer: entry 0 (lxc): no valid vmid"},
		{"resources with a null node", "/cluster/resources", ok(`{"data":[{"type":"lxc","vmid":100,"node":null}]}`), `GET /cluster/resources: answer: entry 0 (lxc 100): node "" is not a node name`},
		{"resources with a path as node", "/cluster/resources", ok(`{"data":[{"type":"lxc","vmid":100,"node":"../../access"}]}`), "is not a node name"},
		{"resources of the wrong type", "/cluster/resources", ok(`{"data":{"vmid":100}}`), "GET /cluster/resources: decode answer: json: cannot unmarshal object"},
		{"vmid of the wrong type", "/cluster/resources", ok(`{"data":[{"type":"lxc","vmid":[1],"node":"pve1"}]}`), "GET /cluster/resources: decode answer"},
		{"data null", "/cluster/resources", ok(`{"data":null}`), "GET /cluster/resources: answer has no data"},
		{"no data at all", "/cluster/resources", ok(`{}`), "GET /cluster/resources: answer has no data"},
		{"truncated JSON", "/cluster/resources", ok(`{"data":[{"type":"lxc","vmid":10`), "GET /cluster/resources: answer is not the API's JSON"},
		{"HTML page from a proxy", "/cluster/resources", answer{status: 200, ctype: "text/html", body: "<html><body>502 Bad Gateway</body></html>"},
			`GET /cluster/resources: answer is not the API's JSON (Content-Type "text/html", starts "<html><body>502 Bad Gateway`},
		{"HTML 502 from a proxy", "/cluster/resources", answer{status: 502, ctype: "text/html", body: "<html>bad gateway</html>"}, "GET /cluster/resources: 502 Bad Gateway"},
		{"5xx with an empty body", "/nodes/pve1/lxc/100/config", answer{status: 503}, "GET /nodes/pve1/lxc/100/config: 503 Service Unavailable"},
		{"redirect", "/cluster/resources", answer{status: 302, location: "https://elsewhere.example/api2/json/cluster/resources"},
			`GET /cluster/resources: 302 Found: redirect to "https://elsewhere.example/api2/json/cluster/resources" not followed`},
		{"status without status", "/nodes/pve1/lxc/100/status/current", ok(`{"data":{"vmid":100}}`), "GET /nodes/pve1/lxc/100/status/current: answer: no status"},
		{"config as a list", "/nodes/pve1/lxc/100/config", ok(`{"data":["a"]}`), "GET /nodes/pve1/lxc/100/config: decode answer"},
		{"raw lxc keys of the wrong shape", "/nodes/pve1/lxc/100/config", ok(`{"data":{"lxc":"x"}}`), "GET /nodes/pve1/lxc/100/config: decode answer: key lxc"},
		{"snapshot without a name", "/nodes/pve1/lxc/100/snapshot", ok(`{"data":[{"snaptime":1}]}`), "GET /nodes/pve1/lxc/100/snapshot: answer: snapshot 0 has no name"},
		{"snapshots null", "/nodes/pve1/lxc/100/snapshot", ok(`{"data":null}`), "GET /nodes/pve1/lxc/100/snapshot: answer has no data"},
		{"body that never ends", "/nodes/pve1/lxc/100/config", answer{status: 200, ctype: "application/json", body: `{"data":{"a":"`, slow: true},
			"GET /nodes/pve1/lxc/100/config: no answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path := strings.TrimPrefix(r.URL.Path, "/api2/json")
				a := map[string]answer{
					"/cluster/resources":                 ok(res),
					"/nodes/pve1/lxc/100/status/current": ok(status),
					"/nodes/pve1/lxc/100/config":         ok(cfg),
					"/nodes/pve1/lxc/100/snapshot":       ok(snaps),
				}[path]
				if path == tt.at {
					a = tt.answer
				}
				if a.ctype != "" {
					w.Header().Set("Content-Type", a.ctype)
				}
				if a.location != "" {
					w.Header().Set("Location", a.location)
				}
				if a.status == 0 {
					a.status = 501
				}
				w.WriteHeader(a.status)
				io.WriteString(w, a.body)
				for a.slow {
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(10 * time.Millisecond):
					}
					if _, err := io.WriteString(w, "x"); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			h, err := New(Options{URL: srv.URL, Token: Token{ID: testTokenID, secret: testSecret}, Timeout: 300 * time.Millisecond, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			g, err := h.Get(context.Background(), api.KindLXC, 100)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Get: %v (guest %+v)\nwant an error containing %q", err, g, tt.wantErr)
			}
			if errors.Is(err, hypervisor.ErrNotFound) {
				t.Error("a malformed answer reads as a missing guest: phoenix would create it again")
			}
		})
	}
}

// FuzzAnswer feeds arbitrary bytes as each kind of answer, with success
// and error statuses: no input may panic, and every error names its
// endpoint.
func FuzzAnswer(f *testing.F) {
	for _, v := range []string{"pve7", "pve8", "pve9"} {
		files, _ := filepath.Glob(filepath.Join("testdata/answers", v, "*.json"))
		for _, file := range files {
			body, _ := os.ReadFile(file)
			f.Add(uint8(0), 200, body)
		}
	}
	f.Add(uint8(9), 200, []byte(`{"data":{"status":"stopped"}}`))
	f.Add(uint8(0), 500, []byte(`{"data":null,"message":"CT is locked (disk)\n"}`))
	f.Add(uint8(0), 400, []byte(`{"data":null,"errors":{"memory":"type check ('integer') failed"}}`))
	f.Add(uint8(12), 200, []byte(`{"data":"UPID:pve1:00000001:00000002:00000003:vzcreate:100:root@pam!x:"}`))
	f.Fuzz(func(t *testing.T, kind uint8, status int, body []byte) {
		k := answerKinds[int(kind)%len(answerKinds)]
		if status < 200 || status > 599 {
			status = 200
		}
		if status >= 300 {
			res := &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, firstLine(body)),
				Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
			e := apiError(k.method, k.endpoint, res)
			if !strings.HasPrefix(e.Error(), k.method+" "+k.endpoint+": ") {
				t.Fatalf("error does not name the endpoint: %v", e)
			}
			_ = errors.Is(e, hypervisor.ErrLocked)
			return
		}
		if _, err := k.decode(k.method, k.endpoint, body); err != nil && !strings.HasPrefix(err.Error(), k.method+" "+k.endpoint+": ") {
			t.Fatalf("error does not name the endpoint: %v", err)
		}
	})
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 40 {
		line = line[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, string(line))
}
