package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"
)

// The status document (`phoenix status -o json`, docs/design.md "Status contract").
const statusSchema = "../cli/testdata/status.schema.json"

const testToken = "0123456789abcdef0123456789abcdef"

// fixture is the example lab in a temp dir, with a real status store and
// a simulated host, behind the page's handler.
type fixture struct {
	t      *testing.T
	cfgDir string
	cfg    *api.Config
	store  *status.Store
	host   *sim.Sim
	conv   *recordingConverger
	srv    *httptest.Server
	cancel context.CancelFunc
	// current is the desired state the handler reads; tests swap it the
	// way a controller's reload does.
	current atomic.Pointer[api.Config]
}

// recordingConverger hands off the way the controller's converger does
// (the converge annotation in the guest's file) and counts the calls.
type recordingConverger struct {
	mu    sync.Mutex
	calls []api.ID
	err   error
}

func (c *recordingConverger) RequestConverge(_ context.Context, g *api.Guest) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, g.ID)
	if c.err != nil {
		return "", c.err
	}
	token := time.Now().UTC().Format(time.RFC3339Nano)
	return token, controller.RequestConverge([]*api.Guest{g}, token)
}

func (c *recordingConverger) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// failingLive is a State whose host look-ups fail.
type failingLive struct {
	ui.State
	err error
}

func (f failingLive) Live(context.Context, api.Kind, api.ID) (ui.Live, error) {
	return ui.Live{}, f.err
}

func newFixture(t *testing.T, opts ui.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, cfgDir: t.TempDir(), conv: &recordingConverger{}}
	for _, name := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join(exampleLab, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.cfgDir, name), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	f.cfg = loadLab(t, f.cfgDir)
	f.current.Store(f.cfg)
	state := t.TempDir()
	var err error
	if f.store, err = status.NewStore(filepath.Join(state, "status")); err != nil {
		t.Fatal(err)
	}
	if f.host, err = sim.New(sim.Options{Dir: filepath.Join(state, "sim")}); err != nil {
		t.Fatal(err)
	}
	f.serve(f.sources(), opts)
	return f
}

func (f *fixture) sources() ui.State {
	return ui.Sources{Config: f.current.Load, Store: f.store, Host: f.host}
}

// serve (re)starts the handler over st.
func (f *fixture) serve(st ui.State, opts ui.Options) {
	f.t.Helper()
	if f.srv != nil {
		f.cancel()
		f.srv.Close()
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := ui.NewHandler(ctx, st, f.conv, opts)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	f.srv, f.cancel = srv, cancel
	f.t.Cleanup(func() {
		cancel()
		srv.Close()
	})
}

func allowed() ui.Options {
	return ui.Options{AllowConverge: true, Token: testToken, TokenPath: "/state/ui-token"}
}

// do sends a request and returns the status code, headers and body.
func (f *fixture) do(method, path string, header map[string]string) (int, http.Header, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (f *fixture) getJSON(path string, v any) {
	f.t.Helper()
	code, _, body := f.do("GET", path, nil)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		f.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (f *fixture) setPhase(id api.ID, phase api.Phase, lastErr string) {
	f.t.Helper()
	kind := f.cfg.Guest(id).Kind
	now := time.Now().UTC()
	if _, err := f.store.Update(id, kind, func(s *api.Status) {
		s.Phase, s.LastError, s.LastAppliedAt = phase, lastErr, &now
		s.LastSteps = []api.StepRecord{{Name: "define", Result: "ok", DurationMS: 12}, {Name: "features", Result: "failed", DurationMS: 30, Error: lastErr}}
		s.SetReady("False", api.ReasonFailed, lastErr, now)
	}); err != nil {
		f.t.Fatal(err)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(statusSchema)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://status.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHandler_page(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts ui.Options
		want []string
	}{
		{"converge off", ui.Options{}, []string{`data-converge="off"`, "--ui-allow-converge"}},
		{"converge on", allowed(), []string{`data-converge="on"`, `id="converge-button"`, "/state/ui-token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			code, h, body := f.do("GET", "/", nil)
			if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("GET /: %d %s", code, h.Get("Content-Type"))
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			for _, w := range append(tt.want, `<th scope="col">Converge token</th>`, `src="static/app.js"`, `href="static/graph.css"`) {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			if strings.Contains(body, testToken) {
				t.Error("the page gives the token away")
			}
		})
	}
}

func TestHandler_assetsAreLocal(t *testing.T) {
	f := newFixture(t, ui.Options{})
	for path, ctype := range map[string]string{
		"/static/app.js":    "text/javascript",
		"/static/style.css": "text/css",
		"/static/graph.css": "text/css",
	} {
		code, h, body := f.do("GET", path, nil)
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), ctype) || len(body) < 100 {
			t.Errorf("GET %s: %d %s, %d bytes", path, code, h.Get("Content-Type"), len(body))
		}
		// No CDN, no web font, nothing from elsewhere.
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s refers to %q", path, bad)
			}
		}
	}
	if code, _, _ := f.do("GET", "/static/nope.js", nil); code != 404 {
		t.Errorf("GET /static/nope.js: %d, want 404", code)
	}
	if code, _, _ := f.do("GET", "/elsewhere", nil); code != 404 {
		t.Errorf("GET /elsewhere: %d, want 404", code)
	}
}

func TestHandler_graphSVG(t *testing.T) {
	f := newFixture(t, ui.Options{})
	f.setPhase(955, api.PhaseFailed, "features: no file ollama.sh")
	// A guest phoenix recorded that is no longer in the files.
	if _, err := f.store.Update(970, api.KindLXC, func(s *api.Status) { s.Phase = api.PhaseOrphaned }); err != nil {
		t.Fatal(err)
	}
	code, h, body := f.do("GET", "/graph.svg", nil)
	if code != 200 || h.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("GET /graph.svg: %d %s", code, h.Get("Content-Type"))
	}
	wellFormed(t, []byte(body))
	for _, id := range f.cfg.IDs {
		if !strings.Contains(body, `id="guest-`+id.String()+`"`) {
			t.Errorf("guest %s is not a node", id)
		}
	}
	for _, want := range []string{`phase-Failed" id="guest-955"`, `phase-Pending" id="guest-941"`, `phase-Orphaned" id="guest-970"`, "<style>"} {
		if !strings.Contains(body, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	_, _, embedded := f.do("GET", "/graph.svg?embed=1", nil)
	if strings.Contains(embedded, "<style>") {
		t.Error("the page's SVG carries a <style>, which its Content-Security-Policy blocks")
	}
}

func TestHandler_listGuests(t *testing.T) {
	f := newFixture(t, ui.Options{})
	ctx := context.Background()
	if err := f.host.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst"}); err != nil {
		t.Fatal(err)
	}
	if err := f.host.Create(ctx, api.KindLXC, 953, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst"}); err != nil {
		t.Fatal(err)
	}
	if err := f.host.Start(ctx, api.KindLXC, 953); err != nil {
		t.Fatal(err)
	}
	f.setPhase(955, api.PhaseFailed, "boom")
	code, _, body := f.do("GET", "/api/v1/guests", nil)
	if code != 200 {
		t.Fatalf("GET /api/v1/guests: %d %s", code, body)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	schema := compileSchema(t)
	for _, doc := range raw {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("guest does not match the status schema: %v\n%s", err, doc)
		}
	}
	var views []ui.GuestView
	f.getJSON("/api/v1/guests", &views)
	if len(views) != len(f.cfg.IDs) {
		t.Fatalf("%d guests, want %d", len(views), len(f.cfg.IDs))
	}
	by := map[string]ui.GuestView{}
	for _, v := range views {
		by[v.ID] = v
	}
	for id, want := range map[string]struct {
		exists bool
		state  string
		phase  api.Phase
	}{
		"900": {true, "stopped", api.PhasePending},
		"953": {true, "running", api.PhasePending},
		"941": {false, "absent", api.PhasePending},
		"955": {false, "absent", api.PhaseFailed},
	} {
		v := by[id]
		if v.Exists != want.exists || v.State != want.state || v.Phase != want.phase {
			t.Errorf("guest %s: exists=%t state=%s phase=%s, want %+v", id, v.Exists, v.State, v.Phase, want)
		}
	}
	if v := by["8000"]; v.Name != "ubuntu-2404-cloud-template" || !v.Template || v.Kind != api.KindVM {
		t.Errorf("8000: %+v", v)
	}
}

func TestHandler_guestDetail(t *testing.T) {
	f := newFixture(t, ui.Options{})
	f.setPhase(941, api.PhaseFailed, "features: vllm.sh exited 1")
	var d ui.GuestDetail
	f.getJSON("/api/v1/guests/941", &d)
	if d.ID != "941" || d.Name != "granite-vllm" || d.Phase != api.PhaseFailed || d.State != "absent" || d.LastError != "features: vllm.sh exited 1" {
		t.Errorf("detail: %+v", d.GuestView)
	}
	if len(d.LastSteps) != 2 || d.LastSteps[1].DurationMS != 30 || len(d.Conditions) != 1 {
		t.Errorf("steps %+v, conditions %+v", d.LastSteps, d.Conditions)
	}
	var spec map[string]any
	if err := json.Unmarshal(d.Spec, &spec); err != nil || spec["vllm_model"] == nil {
		t.Errorf("effective spec lacks the unknown field vllm_model: %v %s", err, d.Spec)
	}
	wantNeeds := []ui.EdgeView{{ID: "921", Kind: "build"}, {ID: "953", Kind: "runtime"}}
	if len(d.Needs) != 2 || d.Needs[0] != wantNeeds[0] || d.Needs[1] != wantNeeds[1] {
		t.Errorf("needs %+v, want %+v", d.Needs, wantNeeds)
	}
	if !strings.HasSuffix(d.File, api.LXCFile) {
		t.Errorf("file %q", d.File)
	}
	var vm ui.GuestDetail
	f.getJSON("/api/v1/guests/8000", &vm)
	if len(vm.NeededBy) != 2 || vm.NeededBy[0].ID != "8001" || vm.NeededBy[0].Kind != "build" {
		t.Errorf("8000 needed by %+v", vm.NeededBy)
	}
	// A VM's effective spec has vm_defaults applied.
	if err := json.Unmarshal(vm.Spec, &spec); err != nil || spec["storage_pool"] != "local-zfs" {
		t.Errorf("8000's spec lacks vm_defaults: %s", vm.Spec)
	}

	for path, want := range map[string]int{
		"/api/v1/guests/999":  http.StatusNotFound,
		"/api/v1/guests/abc":  http.StatusBadRequest,
		"/api/v1/guests/0941": http.StatusBadRequest,
		"/api/v1/guests/99":   http.StatusBadRequest,
	} {
		code, h, body := f.do("GET", path, nil)
		if code != want || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", path, code, body, want)
		}
	}
	if code, _, _ := f.do("GET", "/api/v1/guests/941/x", nil); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/guests/941/x: %d, want 404", code)
	}
}

func TestHandler_orphanDetail(t *testing.T) {
	f := newFixture(t, ui.Options{})
	if _, err := f.store.Update(970, api.KindVM, func(s *api.Status) { s.Phase = api.PhaseOrphaned }); err != nil {
		t.Fatal(err)
	}
	var d ui.GuestDetail
	f.getJSON("/api/v1/guests/970", &d)
	if d.Phase != api.PhaseOrphaned || d.Kind != api.KindVM || d.File != "" || d.Spec != nil {
		t.Errorf("orphan: %+v", d)
	}
	var views []ui.GuestView
	f.getJSON("/api/v1/guests", &views)
	if last := views[len(views)-1]; last.ID != "970" || last.Phase != api.PhaseOrphaned {
		t.Errorf("the orphan is not listed last: %+v", last)
	}
}

func TestHandler_hostErrors(t *testing.T) {
	// A host that cannot answer: the API says so (502), the picture still
	// draws from the status records.
	down := newFixture(t, ui.Options{})
	down.serve(failingLive{down.sources(), errors.New("pct: connection refused")}, ui.Options{})
	for _, path := range []string{"/api/v1/guests", "/api/v1/guests/941"} {
		code, _, body := down.do("GET", path, nil)
		if code != http.StatusBadGateway || !strings.Contains(body, "connection refused") {
			t.Errorf("GET %s with the host down: %d %s", path, code, body)
		}
	}
	if code, _, _ := down.do("GET", "/graph.svg", nil); code != 200 {
		t.Errorf("GET /graph.svg with the host down: %d", code)
	}

	// A corrupt status record does not hide the other guests.
	f := newFixture(t, ui.Options{})
	if err := os.WriteFile(filepath.Join(f.store.Dir(), "941.json"), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var d ui.GuestDetail
	f.getJSON("/api/v1/guests/941", &d)
	if d.Phase != api.PhasePending || !strings.Contains(d.LastError, "unreadable") {
		t.Errorf("corrupt record shown as %s %q", d.Phase, d.LastError)
	}
	var views []ui.GuestView
	f.getJSON("/api/v1/guests", &views)
	if len(views) != 16 {
		t.Errorf("%d guests listed beside a corrupt record, want 16", len(views))
	}
}

func TestHandler_noDesiredStateYet(t *testing.T) {
	f := newFixture(t, allowed())
	f.current.Store(nil)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/v1/guests"}, {"GET", "/api/v1/guests/941"}, {"GET", "/graph.svg"}, {"POST", "/api/v1/guests/941/converge"},
	} {
		code, _, body := f.do(tt.method, tt.path, map[string]string{"Authorization": "Bearer " + testToken})
		if code != http.StatusServiceUnavailable {
			t.Errorf("%s %s before a desired state: %d %s, want 503", tt.method, tt.path, code, body)
		}
	}
	ev := readEvents(t, f, 1)[0]
	if ev.Loaded || len(ev.Guests) != 0 {
		t.Errorf("first event before a desired state: %+v", ev)
	}
}

func TestHandler_converge(t *testing.T) {
	same := func(f *fixture) map[string]string {
		return map[string]string{"Authorization": "Bearer " + testToken, "Origin": f.srv.URL, "Sec-Fetch-Site": "same-origin"}
	}
	tests := []struct {
		name     string
		opts     ui.Options
		method   string
		path     string
		header   func(f *fixture) map[string]string
		convErr  error
		wantCode int
		wantMsg  string
	}{
		{name: "accepted from the page", opts: allowed(), header: same, wantCode: http.StatusAccepted},
		{name: "accepted from curl (no browser headers)", opts: allowed(),
			header:   func(*fixture) map[string]string { return map[string]string{"Authorization": "bearer " + testToken} },
			wantCode: http.StatusAccepted},
		{name: "off without --ui-allow-converge", opts: ui.Options{}, header: same, wantCode: http.StatusForbidden, wantMsg: "--ui-allow-converge"},
		{name: "no token", opts: allowed(),
			header:   func(f *fixture) map[string]string { return map[string]string{"Origin": f.srv.URL} },
			wantCode: http.StatusUnauthorized, wantMsg: "bearer token"},
		{name: "wrong token", opts: allowed(),
			header: func(*fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 32)}
			},
			wantCode: http.StatusUnauthorized},
		{name: "token as basic auth", opts: allowed(),
			header:   func(*fixture) map[string]string { return map[string]string{"Authorization": "Basic " + testToken} },
			wantCode: http.StatusUnauthorized},
		{name: "cross-site fetch", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "cross-site"}
			},
			wantCode: http.StatusForbidden, wantMsg: "cross-origin"},
		{name: "same-site but other origin", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "same-site"}
			},
			wantCode: http.StatusForbidden, wantMsg: "cross-origin"},
		{name: "other origin", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"}
			},
			wantCode: http.StatusForbidden, wantMsg: "Origin http://evil.example"},
		{name: "other port on the same host", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://127.0.0.1:1"}
			},
			wantCode: http.StatusForbidden},
		{name: "opaque origin", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Origin": "null"}
			},
			wantCode: http.StatusForbidden},
		{name: "https origin for an http page", opts: allowed(),
			header: func(f *fixture) map[string]string {
				return map[string]string{"Authorization": "Bearer " + testToken, "Origin": strings.Replace(f.srv.URL, "http:", "https:", 1)}
			},
			wantCode: http.StatusForbidden},
		{name: "DNS-rebound host name", opts: allowed(),
			header: func(f *fixture) map[string]string {
				h := same(f)
				h["Host"], h["Origin"] = "evil.example:80", "http://evil.example:80"
				return h
			},
			wantCode: http.StatusForbidden, wantMsg: "host"},
		{name: "GET is not allowed", opts: allowed(), method: "GET", header: same, wantCode: http.StatusMethodNotAllowed},
		{name: "bad ID", opts: allowed(), path: "/api/v1/guests/x1/converge", header: same, wantCode: http.StatusBadRequest},
		{name: "unknown guest", opts: allowed(), path: "/api/v1/guests/999/converge", header: same, wantCode: http.StatusNotFound},
		{name: "hand-off fails", opts: allowed(), header: same, convErr: errors.New("disk full"), wantCode: http.StatusInternalServerError, wantMsg: "disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			f.conv.err = tt.convErr
			method, path := tt.method, tt.path
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/api/v1/guests/941/converge"
			}
			before, err := os.ReadFile(filepath.Join(f.cfgDir, api.LXCFile))
			if err != nil {
				t.Fatal(err)
			}
			code, h, body := f.do(method, path, tt.header(f))
			if code != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Fatalf("%s %s: %d %s, want %d with %q", method, path, code, body, tt.wantCode, tt.wantMsg)
			}
			if code == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			after, err := os.ReadFile(filepath.Join(f.cfgDir, api.LXCFile))
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusAccepted {
				if string(before) != string(after) {
					t.Error("a refused request changed the config file")
				}
				if n := f.conv.count(); n != 0 && tt.convErr == nil {
					t.Errorf("a refused request reached the converger %d times", n)
				}
				return
			}
			var resp ui.ConvergeResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.ID != "941" || resp.Annotation != api.ConvergeAnnotation {
				t.Fatalf("response %s: %v", body, err)
			}
			// The hand-off wrote the token as the guest's annotation.
			cfg := loadLab(t, f.cfgDir)
			if got := cfg.Guest(941).ConvergeToken(); got != resp.Token {
				t.Errorf("annotation %q, want the token %q", got, resp.Token)
			}
			if cfg.Guest(941).Hash != f.cfg.Guest(941).Hash {
				t.Error("the converge request changed 941's spec hash")
			}
		})
	}
}

func TestNewHandler_refusesConvergeWithoutItsParts(t *testing.T) {
	st := ui.Sources{Config: func() *api.Config { return nil }}
	if _, err := ui.NewHandler(context.Background(), st, &recordingConverger{}, ui.Options{AllowConverge: true}); err == nil {
		t.Error("converge allowed with no token")
	}
	if _, err := ui.NewHandler(context.Background(), st, nil, ui.Options{AllowConverge: true, Token: testToken}); err == nil {
		t.Error("converge allowed with no converger")
	}
	if _, err := ui.NewHandler(context.Background(), st, nil, ui.Options{}); err != nil {
		t.Errorf("read-only page: %v", err)
	}
}

type streamEvent struct {
	Loaded bool   `json:"loaded"`
	Shape  string `json:"shape"`
	Guests []struct {
		ID                    string    `json:"id"`
		Phase                 api.Phase `json:"phase"`
		LastError             string    `json:"lastError"`
		LastHandledConvergeAt string    `json:"lastHandledConvergeAt"`
		RequestedConvergeAt   string    `json:"requestedConvergeAt"`
		Rev                   string    `json:"rev"`
	} `json:"guests"`
	at time.Time
}

// stream opens the event stream and sends each event it reads on the
// channel, which closes when the stream ends.
func stream(t *testing.T, f *fixture) (<-chan streamEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/v1/events", nil)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		cancel()
		t.Fatalf("events Content-Type %q", ct)
	}
	out := make(chan streamEvent, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev streamEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Errorf("event %s: %v", data, err)
				return
			}
			ev.at = time.Now()
			out <- ev
		}
	}()
	return out, cancel
}

func readEvents(t *testing.T, f *fixture, n int) []streamEvent {
	t.Helper()
	ch, cancel := stream(t, f)
	defer cancel()
	var out []streamEvent
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d events", len(out))
			}
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("%d events of %d after 30s", len(out), n)
		}
	}
	return out
}

func phaseOf(ev streamEvent, id string) api.Phase {
	for _, g := range ev.Guests {
		if g.ID == id {
			return g.Phase
		}
	}
	return ""
}

func TestHandler_eventsFollowStatusChanges(t *testing.T) {
	f := newFixture(t, ui.Options{})
	ch, cancel := stream(t, f)
	defer cancel()
	next := func(what string, cond func(streamEvent) bool) streamEvent {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatalf("stream ended waiting for %s", what)
				}
				if cond(ev) {
					return ev
				}
			case <-deadline:
				t.Fatalf("no event with %s", what)
			}
		}
	}
	first := next("the first snapshot", func(streamEvent) bool { return true })
	if !first.Loaded || len(first.Guests) != 16 || first.Shape == "" || phaseOf(first, "955") != api.PhasePending {
		t.Fatalf("first event: %+v", first)
	}
	changed := time.Now()
	f.setPhase(955, api.PhaseFailed, "features: no file ollama.sh")
	ev := next("955 Failed", func(ev streamEvent) bool { return phaseOf(ev, "955") == api.PhaseFailed })
	// Measured, not asserted: the poll interval is 20ms here.
	t.Logf("a status change reached the stream after %s", ev.at.Sub(changed).Round(time.Millisecond))
	if ev.Shape != first.Shape {
		t.Error("a phase change changed the graph's shape")
	}

	// A converge request shows as requested, then as handled.
	token := "2026-11-25T20:00:00Z"
	if err := controller.RequestConverge([]*api.Guest{f.cfg.Guest(941)}, token); err != nil {
		t.Fatal(err)
	}
	f.current.Store(loadLab(t, f.cfgDir)) // what the controller does on reload
	next("941's converge request", func(ev streamEvent) bool {
		for _, g := range ev.Guests {
			if g.ID == "941" {
				return g.RequestedConvergeAt == token
			}
		}
		return false
	})

	// A guest that leaves the files changes the shape.
	if _, err := f.store.Update(970, api.KindLXC, func(s *api.Status) { s.Phase = api.PhaseOrphaned }); err != nil {
		t.Fatal(err)
	}
	ev = next("the orphan", func(ev streamEvent) bool { return phaseOf(ev, "970") == api.PhaseOrphaned })
	if ev.Shape == first.Shape {
		t.Error("a new node left the graph's shape unchanged")
	}

	// The stream ends with the handler's context (controller shutdown).
	f.cancel()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream outlived the handler's context")
		}
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	t.Run("created 0600 then read back", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		tok, path, err := ui.LoadOrCreateToken(dir)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 || path != filepath.Join(dir, ui.TokenFile) {
			t.Fatalf("token file %s: %v %v", path, fi.Mode(), err)
		}
		if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
			t.Errorf("token %q: want 64 hex digits", tok)
		}
		again, _, err := ui.LoadOrCreateToken(dir)
		if err != nil || again != tok {
			t.Errorf("second load: %q %v, want the same token", again, err)
		}
		other, _, _ := ui.LoadOrCreateToken(t.TempDir())
		if other == tok {
			t.Error("two state dirs got the same token")
		}
	})
	for _, tt := range []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr string
	}{
		{"readable by others", func(t *testing.T, path string) { os.WriteFile(path, []byte(testToken), 0o644) }, "mode 0644"},
		{"writable by the group", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(testToken), 0o600)
			os.Chmod(path, 0o620)
		}, "mode 0620"},
		{"a symlink", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			os.WriteFile(target, []byte(testToken), 0o600)
			os.Symlink(target, path)
		}, "not a regular file"},
		{"a folder", func(t *testing.T, path string) { os.Mkdir(path, 0o700) }, "not a regular file"},
		{"too short", func(t *testing.T, path string) { os.WriteFile(path, []byte("secret\n"), 0o600) }, "at least 16"},
		{"two words", func(t *testing.T, path string) { os.WriteFile(path, []byte(testToken+" "+testToken), 0o600) }, "one word"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ui.TokenFile)
			tt.setup(t, path)
			if _, _, err := ui.LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHandler_readEndpointsRefuseWritesAndForeignHosts(t *testing.T) {
	f := newFixture(t, allowed())
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	for _, tt := range []struct{ method, path string }{
		{"POST", "/api/v1/guests"}, {"DELETE", "/api/v1/guests/941"}, {"PUT", "/api/v1/guests/941"},
		{"POST", "/graph.svg"}, {"POST", "/api/v1/events"}, {"POST", "/"},
	} {
		if code, _, _ := f.do(tt.method, tt.path, auth); code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", tt.method, tt.path, code)
		}
	}
	// Reads too are refused under a foreign host name (DNS rebinding);
	// IP addresses and localhost are served.
	for host, want := range map[string]int{
		"evil.example": http.StatusForbidden, "evil.example:8080": http.StatusForbidden, "127.0.0.1.nip.io:80": http.StatusForbidden,
		"localhost:9464": http.StatusOK, "LOCALHOST": http.StatusOK, "127.0.0.1:9464": http.StatusOK, "[::1]:9464": http.StatusOK, "10.0.0.5": http.StatusOK,
	} {
		for _, path := range []string{"/", "/api/v1/guests", "/graph.svg"} {
			if code, _, body := f.do("GET", path, map[string]string{"Host": host}); code != want {
				t.Errorf("GET %s with Host %s: %d %s, want %d", path, host, code, body, want)
			}
		}
	}
}
