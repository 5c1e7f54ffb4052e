package monitoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// The assets live beside this module, where docs/monitoring.md and the
// package point users; the test reads them there.
const (
	exampleLab    = "../examples/lab"
	dashboardFile = "../grafana/phoenix-dashboard.json"
	rulesFile     = "../prometheus/phoenix-rules.yml"
	scrapeFile    = "../prometheus/scrape.yml"
)

// dashboardPanels are the panels of the dashboard, by title.
var dashboardPanels = []string{
	"Reconcile rate by kind", "Reconcile error ratio by kind", "Reconcile duration p50/p90/p99",
	"Step duration by step", "Guests by phase", "Config validity", "Config reloads",
	"Workqueue depth", "Workqueue queue latency", "Workqueue retries", "Longest running processor",
	"Converges triggered", "Process memory", "Process CPU", "Guests drifted on the host", "Leader", "Leader transitions",
}

// prometheusOwn are series Prometheus writes itself, so no /metrics has
// them: up for every scrape target, ALERTS for every pending or firing
// alert.
var prometheusOwn = map[string]bool{"up": true, "ALERTS": true}

// TestMonitoring_metricNamesExist runs the controller on the example lab
// and checks that every metric name the dashboard and the rules use is in
// its /metrics, and that promtool finds nothing wrong with that output.
func TestMonitoring_metricNamesExist(t *testing.T) {
	body := scrapeController(t)
	exported, err := parseExposition(body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	dashboard, rules := readFile(t, dashboardFile), readFile(t, rulesFile)

	t.Run("promtool check metrics", func(t *testing.T) {
		promtool := findTool(t, "promtool", "PROMTOOL")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("%s check metrics on the scraped /metrics: %v\n%s", promtool, err, out)
		}
	})

	// Each case edits a copy of the files (old -> new, every occurrence)
	// and says which names must then be missing, or which error the check
	// must return.
	for _, tc := range []struct {
		name               string
		dashOld, dashNew   string
		rulesOld, rulesNew string
		wantMissing        []string
		wantErr            string
	}{
		{name: "as shipped"},
		{name: "alert on a renamed metric",
			rulesOld: `phoenix_config_valid{job="phoenix"} == 0`, rulesNew: `phoenix_config_is_valid{job="phoenix"} == 0`,
			wantMissing: []string{"phoenix_config_is_valid"}},
		{name: "recording rules on a renamed histogram",
			rulesOld: "phoenix_step_duration_seconds_bucket", rulesNew: "phoenix_step_seconds_bucket",
			wantMissing: []string{"phoenix_step_seconds_bucket"}},
		{name: "a _count of a gauge",
			rulesOld: "deriv(workqueue_depth{", rulesNew: "deriv(workqueue_depth_count{",
			wantMissing: []string{"workqueue_depth_count"}},
		{name: "a panel on a recording rule the rules do not define",
			dashOld: "phoenix:workqueue_retries:rate5m", dashNew: "phoenix:workqueue_retries:rate1m",
			wantMissing: []string{"phoenix:workqueue_retries:rate1m"}},
		{name: "a variable query on a renamed metric",
			dashOld: "label_values(phoenix_config_valid,", dashNew: "label_values(phoenix_config_validity,",
			wantMissing: []string{"phoenix_config_validity"}},
		{name: "a rule that does not parse",
			rulesOld: "phoenix_config_valid{job=\"phoenix\"} == 0", rulesNew: "phoenix_config_valid{job=\"phoenix\" == 0",
			wantErr: "PhoenixConfigInvalid"},
		{name: "a selector without a metric name",
			rulesOld: `absent(up{job="phoenix"})`, rulesNew: `absent({__name__=~"u.*",job="phoenix"})`,
			wantErr: "without one metric name"},
		{name: "a panel with an undefined variable",
			dashOld: `phoenix_guests{job=\"$job\"`, dashNew: `phoenix_guests{job=\"$cluster\"`,
			wantErr: "$cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, r := mutate(t, dashboard, tc.dashOld, tc.dashNew), mutate(t, rules, tc.rulesOld, tc.rulesNew)
			checked, missing, err := checkNames(d, r, exported)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range missing {
				if !slices.Contains(got, m.name) {
					got = append(got, m.name)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.wantMissing) {
				t.Errorf("missing names %v, want %v; all of them:\n%s", got, tc.wantMissing, formatUses(missing))
			}
			if tc.dashOld == "" && tc.rulesOld == "" {
				t.Logf("%d metric names checked against /metrics: %s", len(checked), strings.Join(checked, " "))
				if len(checked) < len(dashboardPanels) {
					t.Errorf("only %d names found in the dashboard and the rules; is the extraction broken?", len(checked))
				}
			}
		})
	}
}

// TestMonitoring_dashboard checks the dashboard's panels and that every
// data source is the ${datasource} variable.
func TestMonitoring_dashboard(t *testing.T) {
	dashboard := readFile(t, dashboardFile)
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string // each in some problem; none: no problem
	}{
		{name: "as shipped"},
		{name: "a hard-coded uid", old: `"uid": "${datasource}"`, new: `"uid": "P1809F7CD0C75ACF3"`,
			want: []string{"P1809F7CD0C75ACF3"}},
		{name: "a dashboard uid", old: `"title": "phoenix controller",`, new: `"title": "phoenix controller", "uid": "phoenix-ctl",`,
			want: []string{`.uid: hard-coded uid phoenix-ctl`}},
		{name: "a panel renamed", old: `"title": "Workqueue retries"`, new: `"title": "Retries"`,
			want: []string{`no panel "Workqueue retries"`, `unexpected panel "Retries"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := dashboardProblems(mutate(t, dashboard, tc.old, tc.new))
			got := strings.Join(problems, "\n")
			ok := len(problems) == 0 && len(tc.want) == 0
			for _, w := range tc.want {
				ok = strings.Contains(got, w)
				if !ok {
					break
				}
			}
			if !ok {
				t.Errorf("problems:\n%s\nwant ones naming %q", got, tc.want)
			}
		})
	}
}

// scrapeController runs the controller on the example lab, waits for a
// successful reconcile and returns /metrics.
func scrapeController(t *testing.T) string {
	t.Helper()
	c := startController(t, "127.0.0.1:0", 0)
	var body string
	waitFor(t, "a successful reconcile in /metrics", func() (bool, string) {
		var code int
		if code, body = c.get("/metrics"); code != http.StatusOK {
			return false, fmt.Sprintf("/metrics: %d %s", code, body)
		}
		n, err := successfulReconciles(body)
		if err != nil {
			return false, err.Error()
		}
		return n >= 1, fmt.Sprintf("%v successful reconciles", n)
	})
	return body
}

// labController is a controller running in-process on a copy of the
// example lab and the simulated host.
type labController struct {
	addr   string // where /metrics is served
	cfgDir string // its config directory, a copy the test may edit
	host   *sim.Sim
}

// startController runs the controller (as controller/helpers_test.go
// does) with metrics on metricsAddr and the given resync period, and waits
// for its first full sync.
func startController(t *testing.T, metricsAddr string, resync time.Duration) *labController {
	t.Helper()
	cfgDir, stateDir := t.TempDir(), t.TempDir()
	files, err := filepath.Glob(filepath.Join(exampleLab, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no JSON files in %s (%v)", exampleLab, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, filepath.Base(f)), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	host, err := sim.New(sim.Options{Dir: filepath.Join(stateDir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	store, err := status.NewStore(filepath.Join(stateDir, "status"))
	if err != nil {
		t.Fatal(err)
	}

	opts := controller.DefaultOptions()
	opts.ConfigDir, opts.StateDir = cfgDir, stateDir
	opts.MetricsAddr = metricsAddr
	opts.Resync = resync
	opts.Debounce = 50 * time.Millisecond
	opts.RetryBaseDelay = 50 * time.Millisecond
	log, err := opts.NewLogger(testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	c, err := controller.New(opts, host, store, log, metrics.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("controller did not stop")
		}
	})

	lc := &labController{cfgDir: cfgDir, host: host}
	waitFor(t, "the first full sync", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("controller stopped: %v", err)
		default:
		}
		if lc.addr = c.Addr(); lc.addr == "" {
			return false, "not listening"
		}
		code, body := lc.get("/readyz")
		return code == http.StatusOK, body
	})
	return lc
}

func (c *labController) get(path string) (int, string) {
	resp, err := http.Get("http://" + c.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// successfulReconciles sums phoenix_reconcile_total{result="success"}.
func successfulReconciles(body string) (float64, error) {
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	n := 0.0
	for _, m := range mfs["phoenix_reconcile_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == metrics.ResultSuccess {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n, nil
}

// waitFor polls cond until it holds or a minute passes; the limit only
// stops a hung test.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last: %s)", what, last)
}

// testWriter sends the controller's log to the test log when -v is given.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// mutate returns a copy of data with every from replaced by to; from must
// occur (an edit that changes nothing would prove nothing).
func mutate(t *testing.T, data []byte, from, to string) []byte {
	t.Helper()
	if from == "" {
		return data
	}
	if !bytes.Contains(data, []byte(from)) {
		t.Fatalf("%q is not in the file any more; update the test case", from)
	}
	return bytes.ReplaceAll(data, []byte(from), []byte(to))
}

// exposition maps each metric family in a /metrics output to its type.
type exposition map[string]dto.MetricType

func parseExposition(body string) (exposition, error) {
	tp := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := tp.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	e := exposition{}
	for name, mf := range mfs {
		e[name] = mf.GetType()
	}
	return e, nil
}

// has reports whether a query for name finds series in the exposition:
// a family of that name, or the _bucket, _sum or _count series of a
// histogram (_sum and _count of a summary).
func (e exposition) has(name string) bool {
	if _, ok := e[name]; ok {
		return true
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
	} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if typ, ok := e[base]; ok && slices.Contains(types, typ) {
				return true
			}
		}
	}
	return false
}

// expr is a PromQL expression and where it is.
type expr struct{ where, text string }

// use is a metric name and where it is used.
type use struct{ name, where string }

func formatUses(us []use) string {
	var b strings.Builder
	for _, u := range us {
		fmt.Fprintf(&b, "  %s (%s)\n", u.name, u.where)
	}
	return b.String()
}

// checkNames returns the metric names the dashboard's and the rules'
// expressions use (sorted, once each) and the uses of those that are
// neither in exported, nor recorded by the rules, nor Prometheus' own.
// An expression that does not parse, or a selector without a fixed
// metric name, is an error.
func checkNames(dashboardJSON, rulesYAML []byte, exported exposition) (checked []string, missing []use, err error) {
	var rules ruleFile
	if err := yaml.Unmarshal(rulesYAML, &rules); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", rulesFile, err)
	}
	var d dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dashboardFile, err)
	}

	var exprs []expr
	recorded := map[string]bool{}
	for _, g := range rules.Groups {
		for i, r := range g.Rules {
			where := fmt.Sprintf("%s: group %s, rule %d", rulesFile, g.Name, i+1)
			switch {
			case r.Record != "":
				where += ", record " + r.Record
				recorded[r.Record] = true
			case r.Alert != "":
				where += ", alert " + r.Alert
			}
			exprs = append(exprs, expr{where, r.Expr})
		}
	}
	if len(recorded) == 0 {
		return nil, nil, fmt.Errorf("%s: no recording rule found", rulesFile)
	}

	fromDashboard, err := d.expressions()
	if err != nil {
		return nil, nil, err
	}
	exprs = append(exprs, fromDashboard...)

	seen := map[string]bool{}
	for _, e := range exprs {
		names, err := namesIn(e.text)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", e.where, err)
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				checked = append(checked, n)
			}
			if !exported.has(n) && !recorded[n] && !prometheusOwn[n] {
				missing = append(missing, use{n, e.where})
			}
		}
	}
	sort.Strings(checked)
	return checked, missing, nil
}

// namesIn returns the metric names of the selectors of a PromQL
// expression, as Prometheus' parser finds them.
func namesIn(q string) ([]string, error) {
	if strings.TrimSpace(q) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", q, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			// {__name__="x"} names a metric too; a regexp does not.
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			err = fmt.Errorf("%s in %q: a selector without one metric name cannot be checked", vs, q)
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// ruleFile is what checkNames needs of a Prometheus rules file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is what the tests need of a Grafana dashboard.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource json.RawMessage `json:"datasource"`
}

// panels returns every panel that is not a row, rows' panels included.
func (d *dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// query returns a variable's query, which Grafana stores as a string or
// as an object with a query field.
func (v *variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// grafanaBuiltins are Grafana's global variables that a Prometheus query
// can use, with a value each can take.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
	"__rate_interval_ms": "300000", "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000",
}

// grafanaVar matches $name, ${name}, ${name:format} and [[name]].
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]`)

// label_values(metric, label) and query_result(query) are Grafana's
// variable queries with a PromQL part; label_values(label) and
// label_names() have none.
var (
	labelValuesOf = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$`)
	queryResult   = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
	noSelector    = regexp.MustCompile(`^\s*(label_values\(\s*[a-zA-Z_]\w*\s*\)|label_names\(\s*\))\s*$`)
)

// expressions returns the PromQL of every target of every panel and of
// every query variable, with the dashboard's variables replaced by values
// they can take.
func (d *dashboard) expressions() ([]expr, error) {
	values := map[string]string{}
	for k, v := range grafanaBuiltins {
		values[k] = v
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "interval":
			values[v.Name] = "5m"
		default:
			// A label value or regexp, inside quotes in the queries.
			values[v.Name] = "phoenix"
		}
	}
	expand := func(where, s string) (string, error) {
		var err error
		out := grafanaVar.ReplaceAllStringFunc(s, func(m string) string {
			sub := grafanaVar.FindStringSubmatch(m)
			name := sub[1] + sub[2] + sub[3]
			v, ok := values[name]
			if !ok {
				err = fmt.Errorf("%s: %q uses $%s, which the dashboard does not define", where, s, name)
			}
			return v
		})
		return out, err
	}

	var out []expr
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s: panel %q, target %s", dashboardFile, p.Title, tg.RefID)
			e, err := expand(where, tg.Expr)
			if err != nil {
				return nil, err
			}
			out = append(out, expr{where, e})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("%s: variable %s", dashboardFile, v.Name)
		q, err := expand(where, v.query())
		if err != nil {
			return nil, err
		}
		switch {
		case noSelector.MatchString(q):
			continue
		case labelValuesOf.MatchString(q):
			q = labelValuesOf.FindStringSubmatch(q)[1]
		case queryResult.MatchString(q):
			q = queryResult.FindStringSubmatch(q)[1]
		}
		out = append(out, expr{where, q})
	}
	return out, nil
}

// dashboardProblems returns what is wrong with the dashboard: panels other
// than dashboardPanels, a panel, target or query variable whose data
// source is not the ${datasource} variable, a uid anywhere that is not a
// variable (the dashboard's own uid included: Grafana gives it one on
// import).
func dashboardProblems(data []byte) []string {
	var problems []string
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return []string{err.Error()}
	}

	titles := map[string]int{}
	for _, p := range d.panels() {
		titles[p.Title]++
		if !isDatasourceVar(p.Datasource) {
			problems = append(problems, fmt.Sprintf("panel %q: datasource %s, want the ${datasource} variable", p.Title, compact(p.Datasource)))
		}
		if len(p.Targets) == 0 {
			problems = append(problems, fmt.Sprintf("panel %q has no query", p.Title))
		}
		for _, tg := range p.Targets {
			if !isDatasourceVar(tg.Datasource) {
				problems = append(problems, fmt.Sprintf("panel %q, target %s: datasource %s, want the ${datasource} variable", p.Title, tg.RefID, compact(tg.Datasource)))
			}
		}
	}
	for _, want := range dashboardPanels {
		switch titles[want] {
		case 0:
			problems = append(problems, fmt.Sprintf("no panel %q", want))
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("%d panels %q", titles[want], want))
		}
	}
	var extra []string
	for title := range titles {
		if !slices.Contains(dashboardPanels, title) {
			extra = append(extra, title)
		}
	}
	sort.Strings(extra)
	for _, title := range extra {
		problems = append(problems, fmt.Sprintf("unexpected panel %q", title))
	}

	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		switch {
		case v.Name == "datasource":
			hasDatasourceVar = v.Type == "datasource" && v.query() == "prometheus"
		case v.Type == "query" && !isDatasourceVar(v.Datasource):
			problems = append(problems, fmt.Sprintf("variable %s: datasource %s, want the ${datasource} variable", v.Name, compact(v.Datasource)))
		}
	}
	if !hasDatasourceVar {
		problems = append(problems, `no variable "datasource" of type datasource for prometheus`)
	}

	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return append(problems, err.Error())
	}
	walkJSON(tree, "", func(path string, v any) {
		if !strings.HasSuffix(path, ".uid") {
			return
		}
		if s, ok := v.(string); !ok || !grafanaVar.MatchString(s) || grafanaVar.FindString(s) != s {
			problems = append(problems, fmt.Sprintf("%s: hard-coded uid %v", path, v))
		}
	})
	return problems
}

// compact is a JSON value on one line, for messages.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// isDatasourceVar reports whether a datasource field is the Prometheus
// ${datasource} variable.
func isDatasourceVar(raw json.RawMessage) bool {
	var ds struct{ Type, UID string }
	return json.Unmarshal(raw, &ds) == nil && ds.Type == "prometheus" && ds.UID == "${datasource}"
}

// walkJSON calls f on every value of a decoded JSON document with its
// path (.panels[3].datasource.uid).
func walkJSON(v any, path string, f func(string, any)) {
	f(path, v)
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkJSON(v[k], path+"."+k, f)
		}
	case []any:
		for i, e := range v {
			walkJSON(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}
