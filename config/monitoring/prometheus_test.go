package monitoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// leafGuest is a guest of the example lab that nothing is cloned from or
// depends on, so destroying it behind the controller's back only makes the
// controller create it again.
const leafGuest = 956

// TestPrometheus runs Debian's Prometheus server with the project's scrape
// config and rules against a controller on the simulated host, as a user
// who followed docs/monitoring.md would: the phoenix target is up, every
// recording rule yields a value, and a broken config file puts
// PhoenixConfigInvalid into pending.
func TestPrometheus(t *testing.T) {
	prom := findTool(t, "prometheus", "PROMETHEUS")
	if prom == "" {
		return
	}
	// A resync of 1s keeps reconciles, queue adds and queue waits coming,
	// so that every rate over a window has two points to differ by.
	ctl := startController(t, freeAddr(t), time.Second)
	p := startPrometheus(t, prom, ctl.addr)

	waitFor(t, `up{job="phoenix"} == 1`, func() (bool, string) {
		v, detail := p.values(`up{job="phoenix"}`)
		return len(v) == 1 && v[0] == 1, detail
	})
	waitFor(t, "rate(phoenix_reconcile_total[5m]) > 0", func() (bool, string) {
		v, detail := p.values(`sum(rate(phoenix_reconcile_total{job="phoenix"}[5m]))`)
		return len(v) == 1 && v[0] > 0, detail
	})

	// Steps run only when a guest is made, and the lab was made before the
	// first scrape: destroy one so that the resync makes it again while
	// Prometheus watches, and the step histograms move.
	ctx := context.Background()
	if err := ctl.host.Stop(ctx, api.KindLXC, leafGuest); err != nil {
		t.Fatal(err)
	}
	if err := ctl.host.Destroy(ctx, api.KindLXC, leafGuest); err != nil {
		t.Fatal(err)
	}

	for _, rule := range recordingRules(t) {
		waitFor(t, "a value of recording rule "+rule, func() (bool, string) {
			v, detail := p.values(rule)
			for _, x := range v {
				if !math.IsNaN(x) {
					return true, detail
				}
			}
			return false, detail
		})
	}

	if s := p.alertState("PhoenixConfigInvalid"); s != "" {
		t.Fatalf("PhoenixConfigInvalid is %s before the config was broken", s)
	}
	lxcFile := filepath.Join(ctl.cfgDir, "phoenix_lxc_configs.json")
	data, err := os.ReadFile(lxcFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lxcFile, data[:len(data)/2], 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PhoenixConfigInvalid pending", func() (bool, string) {
		s := p.alertState("PhoenixConfigInvalid")
		return s == "pending", "state " + strconv.Quote(s)
	})
}

// findTool returns the path of Debian's binary name: $env, else the copy
// hack/prometheus-tools.sh unpacks into .cache/prometheus, else PATH. When
// there is none it skips the test, or fails it under CI=true.
func findTool(t *testing.T, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	cache := os.Getenv("PHOENIX_CACHE")
	if cache == "" {
		cache = "../../.cache"
	} else if !filepath.IsAbs(cache) {
		cache = filepath.Join("../..", cache) // relative to the repository, as in the script
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
	msg := fmt.Sprintf("no %s ($%s, %s, PATH): run `make prometheus-tools` (or hack/prometheus-tools.sh), which unpacks Debian's package into .cache without installing it", name, env, candidates[0])
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// freeAddr returns a loopback address with a port nothing listens on now.
// The controller's address must be in the scrape config before either
// starts, so it cannot be :0.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// prometheus is a running Prometheus server.
type prometheus struct {
	t    *testing.T
	addr string
}

// startPrometheus writes the project's scrape config with target as the
// phoenix target and 1s intervals (instead of 15s, so the test takes
// seconds), copies the rules beside it under the name the config loads,
// and runs the server until the test ends.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	var cfg map[string]any
	if err := yaml.Unmarshal(readFile(t, scrapeFile), &cfg); err != nil {
		t.Fatalf("%s: %v", scrapeFile, err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		t.Fatalf("%s: no global section", scrapeFile)
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	jobs, _ := cfg["scrape_configs"].([]any)
	found := false
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		if job["job_name"] == "phoenix" {
			job["static_configs"] = []any{map[string]any{"targets": []any{target}}}
			found = true
		}
	}
	if !found {
		t.Fatalf("%s: no scrape job named phoenix (the rules select job=\"phoenix\")", scrapeFile)
	}
	rules, _ := cfg["rule_files"].([]any)
	if len(rules) != 1 {
		t.Fatalf("%s: rule_files %v, want the one rules file", scrapeFile, rules)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(rules[0])), readFile(t, rulesFile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, out, 0o644); err != nil {
		t.Fatal(err)
	}

	p := &prometheus{t: t, addr: freeAddr(t)}
	var log syncBuffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	waitFor(t, "Prometheus ready", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// api GETs a Prometheus HTTP API path and decodes its data field.
func (p *prometheus) api(path string, data any) error {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var doc struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if doc.Status != "success" {
		return fmt.Errorf("%s: %s", path, doc.Error)
	}
	return json.Unmarshal(doc.Data, data)
}

// values runs an instant query and returns the sample values, and the
// raw result for a failure message.
func (p *prometheus) values(q string) ([]float64, string) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err.Error()
	}
	var out []float64
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Sprintf("%s: value %v: %v", q, r.Value[1], err)
		}
		out = append(out, v)
	}
	return out, fmt.Sprintf("%s -> %+v", q, data.Result)
}

// alertState returns the state (pending, firing) of the named alert, or "".
func (p *prometheus) alertState(name string) string {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", &data); err != nil {
		p.t.Fatal(err)
	}
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// recordingRules returns the names the rules file records, once each.
func recordingRules(t *testing.T) []string {
	t.Helper()
	var rules ruleFile
	if err := yaml.Unmarshal(readFile(t, rulesFile), &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" && !seen[r.Record] {
				seen[r.Record] = true
				names = append(names, r.Record)
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no recording rules", rulesFile)
	}
	return names
}

// syncBuffer collects a child process's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(s.b.String())
}
