package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

const exampleLab = "../config/examples/lab"

// The example lab's guests and 941's chain (clone sources and dependencies).
var (
	exampleIDs = []api.ID{900, 901, 902, 903, 920, 921, 941, 950, 952, 953, 954, 955, 956, 8000, 8001, 8002}
	chain941   = []api.ID{900, 901, 920, 921, 953, 941}
)

// waitLimit bounds every waitFor; it only stops a hung test, it never
// asserts speed.
var waitLimit = 60 * time.Second

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("timed out waiting for %s (last: %s)", what, last)
}

// syncBuffer collects the controller's log lines.
type syncBuffer = testlab.SyncBuffer

// lab is a copy of the example lab in temp dirs, with a state dir.
type lab struct {
	t        testing.TB
	cfgDir   string
	stateDir string
	host     *sim.Sim
	store    *status.Store
}

func newLab(tb testing.TB) *lab {
	tb.Helper()
	return newLabFrom(tb, exampleLab)
}

// newLabFrom copies the config files of src.
func newLabFrom(tb testing.TB, src string) *lab {
	tb.Helper()
	l := &lab{t: tb, cfgDir: tb.TempDir(), stateDir: tb.TempDir()}
	for _, f := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if os.IsNotExist(err) && f == api.HypervisorFile {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.cfgDir, f), data, 0o640); err != nil {
			tb.Fatal(err)
		}
	}
	var err error
	if l.host, err = sim.New(sim.Options{Dir: filepath.Join(l.stateDir, "sim")}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.host.Close() })
	if l.store, err = status.NewStore(filepath.Join(l.stateDir, "status")); err != nil {
		tb.Fatal(err)
	}
	return l
}

func (l *lab) file(name string) string { return filepath.Join(l.cfgDir, name) }

func (l *lab) read(name string) []byte {
	l.t.Helper()
	data, err := os.ReadFile(l.file(name))
	if err != nil {
		l.t.Fatal(err)
	}
	return data
}

// write replaces a config file the way editors do: a new file renamed
// over the old one.
func (l *lab) write(name string, data []byte) {
	l.t.Helper()
	tmp := l.file("." + name + ".swp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Rename(tmp, l.file(name)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) guest(kind api.Kind, id api.ID) (*hypervisor.Guest, bool) {
	g, ok, err := hypervisor.Exists(context.Background(), l.host, kind, id)
	if err != nil {
		l.t.Fatal(err)
	}
	return g, ok
}

func (l *lab) status(id api.ID) *api.Status {
	l.t.Helper()
	st, err := l.store.Get(id, "")
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

func kindOf(id api.ID) api.Kind {
	if id >= 8000 {
		return api.KindVM
	}
	return api.KindLXC
}

// allReady reports whether every listed guest exists and is Ready.
func (l *lab) allReady(ids []api.ID) (bool, string) {
	for _, id := range ids {
		if _, ok := l.guest(kindOf(id), id); !ok {
			return false, fmt.Sprintf("%s missing", id)
		}
		if st := l.status(id); st.Phase != api.PhaseReady {
			return false, fmt.Sprintf("%s is %s %s", id, st.Phase, st.LastError)
		}
	}
	return true, ""
}

// hostState is every guest of the simulated host as it keeps it, for
// before/after comparisons.
func (l *lab) hostState() map[api.ID]string {
	l.t.Helper()
	out, err := l.host.Dump()
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// running is a controller running in-process on a lab.
type running struct {
	l    *lab
	c    *controller.Controller
	reg  *prometheus.Registry
	logs *syncBuffer
	stop context.CancelFunc
	done chan error
}

// start runs a controller on the lab; mod adjusts its options, host (when
// not nil) replaces the lab's simulated host.
func (l *lab) start(mod func(*controller.Options), host hypervisor.Host) *running {
	l.t.Helper()
	return l.startWith(mod, host, nil)
}

// startWith is start with a hook that sees the controller before it runs
// (to make it campaign for leadership, say).
func (l *lab) startWith(mod func(*controller.Options), host hypervisor.Host, before func(*controller.Controller)) *running {
	l.t.Helper()
	opts := controller.DefaultOptions()
	opts.ConfigDir, opts.StateDir = l.cfgDir, l.stateDir
	opts.MetricsAddr = "127.0.0.1:0"
	opts.Resync = 0
	opts.Debounce = 50 * time.Millisecond
	opts.RetryBaseDelay = 50 * time.Millisecond
	opts.Verbosity = 1
	opts.LogFormat = "json"
	if mod != nil {
		mod(&opts)
	}
	logs := &syncBuffer{}
	log, err := opts.NewLogger(io.MultiWriter(logs, testWriter{l.t}))
	if err != nil {
		l.t.Fatal(err)
	}
	if host == nil {
		host = l.host
	}
	reg := metrics.NewRegistry()
	c, err := controller.New(opts, host, l.store, log, reg)
	if err != nil {
		l.t.Fatal(err)
	}
	if before != nil {
		before(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{l: l, c: c, reg: reg, logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	l.t.Cleanup(func() { r.shutdown() })
	return r
}

// testWriter sends log lines to the test log when -v is given.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// shutdown stops the controller (like SIGTERM) and returns Run's result.
func (r *running) shutdown() error {
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(60 * time.Second):
		r.l.t.Fatal("controller did not stop")
		return nil
	}
}

func (r *running) waitReady() {
	r.l.t.Helper()
	waitFor(r.l.t, "the first full sync", func() (bool, string) {
		select {
		case err := <-r.done:
			r.l.t.Fatalf("controller stopped: %v", err)
		default:
		}
		if r.c.Addr() == "" {
			return false, "not listening"
		}
		code, body := r.get("/readyz")
		return code == http.StatusOK, body
	})
}

func (r *running) get(path string) (int, string) {
	resp, err := http.Get("http://" + r.c.Addr() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric sums the samples of a metric whose labels include want.
func (r *running) metric(name string, want map[string]string) float64 {
	r.l.t.Helper()
	return gather(r.l.t, r.reg, name, want)
}

func gather(tb testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// idle waits until the queue is empty and no worker is busy.
func (r *running) idle() {
	r.l.t.Helper()
	waitFor(r.l.t, "an idle queue", func() (bool, string) {
		depth := r.metric("workqueue_depth", map[string]string{"name": "guests"})
		adds := r.metric("workqueue_adds_total", map[string]string{"name": "guests"})
		work := r.metric("workqueue_work_duration_seconds", map[string]string{"name": "guests"})
		return depth == 0 && adds == work, fmt.Sprintf("depth %v, adds %v, done %v", depth, adds, work)
	})
}

// logLines returns the decoded JSON log lines whose msg is msg.
func (r *running) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type controllerOptions = controller.Options

var defaultDebounce = controller.DefaultOptions().Debounce

// workflowRuns counts, per guest, the create workflows that ran to the
// end, from the controller's "Action done" log lines (verbosity 1); an
// action skipped under the guest's lock does not count.
func workflowRuns(tb testing.TB, logs string) map[string]int {
	tb.Helper()
	runs := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"Action done"`) {
			continue
		}
		var e struct {
			Action string `json:"action"`
			ID     any    `json:"id"`
			Result string `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if e.Action == "create" && e.Result == "ok" {
			runs[fmt.Sprint(e.ID)]++
		}
	}
	return runs
}

// findTool finds an external tool: $env, Debian's package unpacked into
// .cache by hack/prometheus-tools.sh, then PATH. Missing, it fails the test
// under CI=true and skips it, visibly, elsewhere.
func findTool(t *testing.T, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	cache := os.Getenv("PHOENIX_CACHE")
	if cache == "" {
		cache = "../.cache"
	} else if !filepath.IsAbs(cache) {
		cache = filepath.Join("..", cache) // relative to the repository, as in the script
	}
	candidates := []string{filepath.Join(cache, "prometheus", "usr", "bin", name)}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("no %s ($%s, %s, PATH): run `make prometheus-tools`", name, env, candidates[0])
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}
