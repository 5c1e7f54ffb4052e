package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Label values.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// Registry is what the controller needs of a registry: a place to register
// its collectors and a source for /metrics.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// durationBuckets spans a no-op reconcile on the simulated host (well under
// a millisecond) to a real template build (most of an hour).
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Metrics are the phoenix_* series.
type Metrics struct {
	// ReconcileTotal counts finished reconciles by kind and result.
	ReconcileTotal *prometheus.CounterVec
	// ReconcileDuration observes each reconcile by kind.
	ReconcileDuration *prometheus.HistogramVec
	// StepDuration observes each workflow step by kind and step.
	StepDuration *prometheus.HistogramVec
	// ConfigValid is 1 when the last reload of the config was valid.
	ConfigValid prometheus.Gauge
	// ConfigReloads counts reloads by result.
	ConfigReloads *prometheus.CounterVec
	// ConvergeTotal counts full-chain converges started by a new token.
	ConvergeTotal prometheus.Counter
	// Leader is 1 while this controller leads (reconciles), 0 while it
	// stands by.
	Leader prometheus.Gauge
	// LeaderTransitions counts the times this controller became the
	// leader.
	LeaderTransitions prometheus.Counter
	// PrunesTotal counts guests destroyed by --prune, by result: success,
	// error, or refused (more left the files at once than --prune-max).
	PrunesTotal *prometheus.CounterVec
	// DriftedGuests is the number of guests, by kind, whose host config
	// differs from the desired state they were last applied with.
	DriftedGuests *prometheus.GaugeVec
}

// ResultRefused is the prune result of a guest --prune-max kept.
const ResultRefused = "refused"

// New creates the phoenix_* metrics and registers them with reg, along with
// a phoenix_guests collector that asks guests for the current counts at each
// scrape. kinds and phases list the label values whose series exist from
// the start (at 0).
func New(reg prometheus.Registerer, kinds, phases []string, guests func() map[[2]string]int) (*Metrics, error) {
	m := &Metrics{
		ReconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoenix_reconcile_total",
			Help: "Total number of finished guest reconciles, by guest kind and result.",
		}, []string{"kind", "result"}),
		ReconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phoenix_reconcile_duration_seconds",
			Help:    "Time in seconds one guest reconcile takes, by guest kind.",
			Buckets: durationBuckets,
		}, []string{"kind"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phoenix_step_duration_seconds",
			Help:    "Time in seconds one workflow step takes, by guest kind and step name.",
			Buckets: durationBuckets,
		}, []string{"kind", "step"}),
		ConfigValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phoenix_config_valid",
			Help: "Whether the last reload of the config directory was valid (1) or not (0).",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoenix_config_reloads_total",
			Help: "Total number of config directory reloads, by result.",
		}, []string{"result"}),
		ConvergeTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoenix_converge_total",
			Help: "Total number of full-chain converges started by a new converge.phoenix.io/requestedAt token.",
		}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phoenix_leader",
			Help: "Whether this controller is the leader and reconciles (1) or stands by (0).",
		}),
		LeaderTransitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoenix_leader_transitions_total",
			Help: "Total number of times this controller became the leader.",
		}),
		PrunesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoenix_prunes_total",
			Help: "Total number of guests --prune destroyed (success), failed to destroy (error) or kept because more left the files at once than --prune-max (refused).",
		}, []string{"result"}),
		DriftedGuests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "phoenix_drifted_guests",
			Help: "Number of guests, by kind, whose config on the host differs from the desired state they were last applied with (condition Drifted).",
		}, []string{"kind"}),
	}
	// Series that exist from the start, so that rates are 0, not absent.
	for _, r := range []string{ResultSuccess, ResultError, ResultRefused} {
		m.PrunesTotal.WithLabelValues(r)
	}
	for _, k := range kinds {
		m.ReconcileTotal.WithLabelValues(k, ResultSuccess)
		m.ReconcileTotal.WithLabelValues(k, ResultError)
		m.DriftedGuests.WithLabelValues(k)
	}
	m.ConfigReloads.WithLabelValues(ResultSuccess)
	m.ConfigReloads.WithLabelValues(ResultError)
	gc := &guestsCollector{
		desc: prometheus.NewDesc("phoenix_guests",
			"Number of guests by kind and phase (Pending, Provisioning, Ready, Failed, Orphaned).",
			[]string{"kind", "phase"}, nil),
		kinds: kinds, phases: phases, count: guests,
	}
	for _, c := range []prometheus.Collector{m.ReconcileTotal, m.ReconcileDuration, m.StepDuration,
		m.ConfigValid, m.ConfigReloads, m.ConvergeTotal, m.Leader, m.LeaderTransitions, m.PrunesTotal, m.DriftedGuests, gc} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// guestsCollector reports phoenix_guests from the controller's own view at
// scrape time, so the counts can never drift from the per-guest phases.
type guestsCollector struct {
	desc   *prometheus.Desc
	kinds  []string
	phases []string
	count  func() map[[2]string]int
}

func (c *guestsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *guestsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.count()
	seen := map[[2]string]bool{}
	for _, k := range c.kinds {
		for _, p := range c.phases {
			key := [2]string{k, p}
			seen[key] = true
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[key]), k, p)
		}
	}
	for key, n := range counts {
		if !seen[key] {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), key[0], key[1])
		}
	}
}
