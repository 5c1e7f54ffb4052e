package controller

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
)

// Options configure a controller. BindFlags binds the controller's own
// flags; ConfigDir, StateDir, ScriptsDir and Parallel come from the CLI's global flags.
type Options struct {
	// ConfigDir holds the desired-state files.
	ConfigDir string
	// StateDir holds the status files and the one-writer lock.
	StateDir string
	// ScriptsDir holds the features/, apps/ and health/ scripts; empty
	// passes scripts by name only (the sim backend records them).
	ScriptsDir string
	// Parallel bounds how many actions of one reconcile's plan run at once.
	Parallel int

	// Workers is the number of guests reconciled at once.
	Workers int
	// Resync is how often every guest is re-checked; 0 turns it off.
	Resync time.Duration
	// MetricsAddr is where /metrics, /healthz and /readyz are served;
	// empty turns the listener off.
	MetricsAddr string
	// Prune deletes guests that were removed from the files.
	Prune bool
	// Debounce is how long the files must stay quiet before a reload.
	Debounce time.Duration
	// RetryBaseDelay and RetryMaxDelay bound the per-guest exponential
	// backoff of failed reconciles.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// RetryQPS and RetryBurst are the overall token bucket for retries.
	RetryQPS   float64
	RetryBurst int
	// ShutdownTimeout is how long in-flight reconciles may run on after a
	// stop signal before their context is cancelled.
	ShutdownTimeout time.Duration
	// AllowedHosts are names, besides IP addresses and localhost, that
	// requests to the listener may carry as Host (a reverse proxy's).
	AllowedHosts []string
	// Strict refuses a desired state with warnings (an unknown field close
	// to a known one) as if it were invalid.
	Strict bool
	// PruneGrace is how long a guest must be absent from a present, valid
	// file before --prune destroys it.
	PruneGrace time.Duration
	// PruneMax bounds how many guests one pass may prune; 0 is no bound.
	PruneMax int
	// PProf serves net/http/pprof on the metrics listener.
	PProf bool
	// LogFormat is text or json.
	LogFormat string
	// Verbosity is the logr V level shown (-v N).
	Verbosity int

	// LeaderElect makes the controller stand by until it holds the leader
	// lock (see package leader); only the leader reconciles.
	LeaderElect bool
	// LeaderRenew is how often the lock is tried and, once held, renewed.
	LeaderRenew time.Duration
	// LeaderLease is how long the state dir's lock file stays held
	// without a renewal; the pmxcfs lock's lifetime is pmxcfs' own 120 s.
	LeaderLease time.Duration
	// PVEEtc is where pmxcfs is mounted: with a priv folder there the
	// leader lock is the cluster-wide pmxcfs lock.
	PVEEtc string
}

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		Parallel:        4,
		Workers:         4,
		Resync:          10 * time.Minute,
		MetricsAddr:     "127.0.0.1:9464",
		Debounce:        100 * time.Millisecond,
		RetryBaseDelay:  time.Second,
		RetryMaxDelay:   5 * time.Minute,
		RetryQPS:        10,
		RetryBurst:      100,
		ShutdownTimeout: 30 * time.Second,
		LogFormat:       "text",
		LeaderRenew:     10 * time.Second,
		LeaderLease:     30 * time.Second,
		PVEEtc:          "/etc/pve",
		PruneGrace:      5 * time.Minute,
		PruneMax:        1,
	}
}

// BindFlags binds the controller's flags to o, with o's current values as
// defaults.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Workers, "workers", o.Workers, "how many guests are reconciled at once")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "how often every guest is re-checked against the host (0: never); a guest deleted behind phoenix's back is recreated")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "address for /metrics, /healthz and /readyz (empty: off)")
	fs.BoolVar(&o.Prune, "prune", o.Prune, "stop and destroy guests removed from the files (default: mark them Orphaned and leave them alone)")
	fs.DurationVar(&o.Debounce, "debounce", o.Debounce, "quiet time after a file change before the config is reloaded")
	fs.DurationVar(&o.RetryBaseDelay, "retry-base-delay", o.RetryBaseDelay, "first delay before a failed guest is reconciled again (doubles on each failure)")
	fs.DurationVar(&o.RetryMaxDelay, "retry-max-delay", o.RetryMaxDelay, "longest delay between retries of a failing guest")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "on SIGINT/SIGTERM, how long in-flight reconciles may finish before they are cancelled")
	fs.StringArrayVar(&o.AllowedHosts, "ui-allowed-host", o.AllowedHosts, "a name besides IP addresses and localhost that requests may carry as Host (a reverse proxy's); repeatable")
	fs.BoolVar(&o.Strict, "strict", o.Strict, "refuse a desired state with warnings (an unknown field close to a known one) as invalid")
	fs.DurationVar(&o.PruneGrace, "prune-grace", o.PruneGrace, "with --prune: how long a guest must be absent from a present, valid file before it is destroyed")
	fs.IntVar(&o.PruneMax, "prune-max", o.PruneMax, "with --prune: the most guests one pass destroys (0: no bound)")
	fs.BoolVar(&o.PProf, "pprof", o.PProf, "serve net/http/pprof under /debug/pprof/ on the metrics address")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format: text or json")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "run as one of several controllers on one config: reconcile only while holding the leader lock (pmxcfs' cluster-wide lock when <pve-etc>/priv exists, else a lock file in the state dir), stand by otherwise")
	fs.DurationVar(&o.LeaderRenew, "leader-renew", o.LeaderRenew, "with --leader-elect: how often the leader lock is tried and renewed (under half its lifetime)")
	fs.DurationVar(&o.LeaderLease, "leader-lease", o.LeaderLease, "with --leader-elect and the state dir's lock file: how long a leader that stopped renewing keeps the lock (pmxcfs' lifetime is a fixed 120s)")
	fs.StringVar(&o.PVEEtc, "pve-etc", o.PVEEtc, "with --leader-elect: where pmxcfs is mounted")
	fs.IntVarP(&o.Verbosity, "v", "v", o.Verbosity, "log verbosity: 0 (changes and errors), 1 (every reconcile and action), 2 (steps and watch events)")
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.Workers < 1:
		return fmt.Errorf("--workers %d: want 1 or more", o.Workers)
	case o.Parallel < 1:
		return fmt.Errorf("--parallel %d: want 1 or more", o.Parallel)
	case o.Resync < 0:
		return fmt.Errorf("--resync %s: want 0 (off) or more", o.Resync)
	case o.Debounce < 0:
		return fmt.Errorf("--debounce %s: want 0 or more", o.Debounce)
	case o.RetryBaseDelay <= 0 || o.RetryMaxDelay < o.RetryBaseDelay:
		return fmt.Errorf("--retry-base-delay %s, --retry-max-delay %s: want 0 < base <= max", o.RetryBaseDelay, o.RetryMaxDelay)
	case o.ShutdownTimeout < 0:
		return fmt.Errorf("--shutdown-timeout %s: want 0 or more", o.ShutdownTimeout)
	case o.PruneGrace < 0:
		return fmt.Errorf("--prune-grace %s: want 0 or more", o.PruneGrace)
	case o.PruneMax < 0:
		return fmt.Errorf("--prune-max %d: want 0 (no bound) or more", o.PruneMax)
	case o.Verbosity < 0:
		return fmt.Errorf("-v %d: want 0 or more", o.Verbosity)
	case o.LogFormat != "text" && o.LogFormat != "json":
		return fmt.Errorf("--log-format %q: want text or json", o.LogFormat)
	case o.LeaderElect && (o.LeaderRenew <= 0 || o.LeaderLease <= 0):
		// How renew relates to the lifetime depends on the lock in use
		// (pmxcfs' is fixed): leader.NewElector checks that.
		return fmt.Errorf("--leader-renew %s, --leader-lease %s: want both more than 0", o.LeaderRenew, o.LeaderLease)
	case o.ConfigDir == "" || o.StateDir == "":
		return fmt.Errorf("config dir and state dir must be set")
	}
	return nil
}

// NewLogger builds the logr.Logger the flags ask for, backed by log/slog
// and writing to w. logr's V(n) is slog level -n, so -v N shows V(0)..V(N).
func (o *Options) NewLogger(w io.Writer) (logr.Logger, error) {
	hopts := &slog.HandlerOptions{Level: slog.Level(-o.Verbosity), ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		// V(n) is slog level -n, which slog would print as DEBUG+3 for
		// V(1); print it as logr names it.
		if a.Key == slog.LevelKey && len(groups) == 0 {
			if l, ok := a.Value.Any().(slog.Level); ok && l < slog.LevelInfo {
				a.Value = slog.StringValue("V" + strconv.Itoa(int(-l)))
			}
		}
		return a
	}}
	var h slog.Handler
	switch o.LogFormat {
	case "text", "":
		h = slog.NewTextHandler(w, hopts)
	case "json":
		h = slog.NewJSONHandler(w, hopts)
	default:
		return logr.Discard(), fmt.Errorf("--log-format %q: want text or json", o.LogFormat)
	}
	return logr.FromSlogHandler(h), nil
}
