package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/httpguard"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/leader"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// QueueName names the workqueue in the workqueue_* metrics.
const QueueName = "guests"

var (
	allKinds  = []string{string(api.KindLXC), string(api.KindVM)}
	allPhases = []string{string(api.PhasePending), string(api.PhaseProvisioning), string(api.PhaseReady),
		string(api.PhaseFailed), string(api.PhaseOrphaned)}
)

// Controller drives a host toward the desired state in a config directory,
// guest by guest, for as long as Run runs.
type Controller struct {
	opts      Options
	configDir string
	host      hypervisor.Host
	store     *trackingStore
	log       logr.Logger
	reg       metrics.Registry
	metrics   *metrics.Metrics
	flows     *reconcilers.Workflows
	book      *phaseBook
	drift     driftBook
	locks     *lock.Keyed[api.ID]
	queue     workqueue.TypedRateLimitingInterface[api.ID]
	// reconcilers hold the per-guest decision, one per kind.
	reconcilers map[api.Kind]Reconciler

	// cfg is the last valid desired state; nil until one was loaded.
	cfg atomic.Pointer[api.Config]
	// loads remembers each guest's checked result by its bytes, so that a
	// reload after an edit re-checks only the guests that changed.
	loads *desired.Loader

	mu sync.Mutex
	// removed holds the guests that left the files (Orphaned or to prune),
	// removedAt when each was first seen gone (the start of --prune-grace).
	removed   map[api.ID]api.Kind
	removedAt map[api.ID]time.Time
	// initial holds the keys of the first full sync that have not been
	// reconciled once yet; nil before the first valid load.
	initial map[api.ID]bool
	addr    string
	// routes are mounted on the metrics listener beside /metrics (the
	// status page); see Handle.
	routes []route

	ready    atomic.Bool
	stopping atomic.Bool

	// elector is set by ElectLeader; nil runs without leader election.
	elector *leader.Elector
	// standby is true while an electing controller does not lead.
	standby atomic.Bool
	// release hands back the memory of reloads (releaseReload).
	releaseMu sync.Mutex
	release   *time.Timer
	// term is the leadership this controller holds, when electing.
	term atomic.Pointer[leader.Term]

	// committing bounds the reconciles whose outcomes are still being
	// committed (see processNext); finishing counts their goroutines.
	committing chan struct{}
	finishing  sync.WaitGroup
}

// committingPerWorker is how many reconciles per worker may wait for their
// status writes at once. A worker blocks at the bound; the group commit
// can take up to workers × (1 + this) outcomes at a time.
const committingPerWorker = 16

// New builds a controller from its dependencies: the host it drives, the
// status store it shares with the CLI, a logger, and the registry its
// metrics go to (see metrics.NewRegistry). It starts nothing; Run does.
func New(opts Options, host hypervisor.Host, store StatusStore, log logr.Logger, reg metrics.Registry) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.ConfigDir)
	if err != nil {
		return nil, err
	}
	book := newPhaseBook()
	c := &Controller{
		opts:      opts,
		configDir: dir,
		host:      host,
		store:     &trackingStore{StatusStore: store, book: book},
		log:       log,
		reg:       reg,
		flows:     reconcilers.NewWorkflows(host, reconcilers.DetectScripts(opts.ConfigDir, opts.ScriptsDir)),
		book:      book,
		locks:     &lock.Keyed[api.ID]{},
		removed:   map[api.ID]api.Kind{},
		removedAt: map[api.ID]time.Time{},
		loads:     desired.NewLoader(),
	}
	c.committing = make(chan struct{}, opts.Workers*committingPerWorker)
	c.reconcilers = c.newReconcilers()
	if c.metrics, err = metrics.New(reg, allKinds, allPhases, book.counts); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	wqp, err := metrics.NewWorkqueueProvider(reg)
	if err != nil {
		return nil, fmt.Errorf("register workqueue metrics: %w", err)
	}
	wqp.Init(QueueName)
	if opts.LeaderElect {
		if c.elector, err = c.newElector(); err != nil {
			return nil, &plan.UsageError{Msg: err.Error()}
		}
	}
	// Per-guest exponential backoff, capped by an overall token bucket so
	// that a host-wide outage does not turn into a retry storm.
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[api.ID](opts.RetryBaseDelay, opts.RetryMaxDelay),
		&workqueue.TypedBucketRateLimiter[api.ID]{Limiter: rate.NewLimiter(rate.Limit(opts.RetryQPS), opts.RetryBurst)},
	)
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[api.ID]{
		Name:            QueueName,
		MetricsProvider: wqp,
	})
	return c, nil
}

// AllowedHosts are the names besides IP addresses and localhost that the
// listener accepts as Host (--ui-allowed-host).
func (c *Controller) AllowedHosts() []string { return c.opts.AllowedHosts }

// Addr is the address the metrics listener is bound to, once Run listens.
func (c *Controller) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Ready reports whether the first full sync is done (what /readyz says).
func (c *Controller) Ready() bool { return c.ready.Load() }

// Desired is the desired state in force: the last valid one loaded, or nil
// before the first.
func (c *Controller) Desired() *api.Config { return c.cfg.Load() }

type route struct {
	pattern string
	handler http.Handler
}

// Handle mounts handler at pattern on the metrics listener, beside
// /metrics, /healthz and /readyz (the status page goes at "/"). Call it
// before Run.
func (c *Controller) Handle(pattern string, handler http.Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routes = append(c.routes, route{pattern, handler})
}

// Run (once per Controller) takes the state dir's lock, serves HTTP, watches the files and
// reconciles until ctx ends. On the way out it takes no new work, gives
// in-flight reconciles ShutdownTimeout to finish, cancels the rest, and
// returns nil. It fails at once (a *statelock.HeldError) when another
// controller runs on the state dir.
//
// With leader election (Options.LeaderElect) it first stands by: it serves
// HTTP and loads the files, but takes the state dir's lock and reconciles
// only once it holds the leader lock. When a renewal of that lock fails it
// stops at once, cancelling in-flight reconciles, and returns an error
// wrapping leader.ErrLost.
func (c *Controller) Run(ctx context.Context) error {
	var (
		w    *watcher
		srv  *http.Server
		term *leader.Term
		err  error
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	defer c.stopRelease()
	watchDone := make(chan struct{})
	stopServing := func() {
		stopWatch()
		if w != nil {
			<-watchDone
		}
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}
	}
	if c.elector != nil {
		c.standby.Store(true)
		if w, srv, err = c.watchAndServe(watchCtx, watchDone); err != nil {
			return err
		}
		go c.pollFiles(w, c.opts.LeaderRenew)(watchCtx)
		if term, err = c.standBy(ctx, w); term == nil {
			stopServing()
			return err
		}
		defer func() {
			c.metrics.Leader.Set(0)
			if err := term.Release(); err != nil {
				c.log.Error(err, "Cannot release the leader lock; a standby takes over once it expires")
			}
		}()
	}
	lock, err := c.acquireStateLock(ctx, term)
	if err != nil {
		stopServing()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot start the controller: %w", err)
	}
	defer lock.Release()
	if w == nil {
		if w, srv, err = c.watchAndServe(watchCtx, watchDone); err != nil {
			return err
		}
	}
	c.term.Store(term)
	c.standby.Store(false)
	c.metrics.Leader.Set(1)
	c.metrics.LeaderTransitions.Inc()
	c.log.Info("Starting controller", "configDir", c.configDir, "stateDir", c.opts.StateDir,
		"workers", c.opts.Workers, "resync", c.opts.Resync.String(), "prune", c.opts.Prune, "pid", os.Getpid())

	// Work runs on its own context so that a stop signal does not cut
	// in-flight steps short before ShutdownTimeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	c.reload(w)
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(workCtx) {
			}
		}()
	}

	var resync <-chan time.Time
	if c.opts.Resync > 0 {
		t := time.NewTicker(c.opts.Resync)
		defer t.Stop()
		resync = t.C
	}
	var lost <-chan struct{}
	if term != nil {
		lost = term.Lost()
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-lost:
			break loop
		case <-w.reload:
			c.reload(w)
		case <-resync:
			c.resync()
		}
	}

	grace := c.opts.ShutdownTimeout
	if term != nil && term.Err() != nil {
		// Another controller may lead as soon as the lock expires: stop
		// now rather than race it.
		c.metrics.Leader.Set(0)
		c.log.Error(term.Err(), "Lost the leader lock; cancelling in-flight reconciles and exiting")
		grace = 0
	} else {
		c.log.Info("Shutting down; no new work is taken", "inFlightGrace", grace.String())
	}
	c.stopping.Store(true)
	stopWatch()
	<-watchDone
	c.queue.ShutDown()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		c.finishing.Wait()
		close(done)
	}()
	timer := time.NewTimer(grace)
	select {
	case <-done:
	case <-timer.C:
		c.log.Info("Cancelling in-flight reconciles")
		cancelWork()
		<-done
	}
	timer.Stop()
	stopServing()
	if term != nil && term.Err() != nil {
		return fmt.Errorf("stopped leading: %w", term.Err())
	}
	c.log.Info("Controller stopped")
	return nil
}

// watchAndServe starts watching the config dir (until ctx ends; done is
// closed then) and the HTTP listener.
func (c *Controller) watchAndServe(ctx context.Context, done chan struct{}) (*watcher, *http.Server, error) {
	w, err := newWatcher(c.log, c.opts.Debounce)
	if err != nil {
		return nil, nil, fmt.Errorf("watch %s: %w", c.configDir, err)
	}
	// The config dir must be watchable; the folders of core_paths targets
	// elsewhere are watched when they can be.
	if err := w.watchFiles([]string{filepath.Join(c.configDir, api.LXCFile)}); err != nil {
		w.fsw.Close()
		return nil, nil, fmt.Errorf("watch %s: %w", c.configDir, err)
	}
	srv, err := c.serve()
	if err != nil {
		w.fsw.Close()
		return nil, nil, err
	}
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	return w, srv, nil
}

// serve starts the HTTP listener, when one is configured.
func (c *Controller) serve() (*http.Server, error) {
	if c.opts.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.opts.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", c.opts.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if c.standby.Load() {
			c.standbyReady(w)
			return
		}
		if !c.ready.Load() {
			http.Error(w, "not ready: the first full sync has not finished", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if c.opts.PProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	c.mu.Lock()
	for _, rt := range c.routes {
		mux.Handle(rt.pattern, rt.handler)
	}
	c.mu.Unlock()
	// Every route, the status page's included, gets the Host check: the
	// metrics and pprof are as much worth reading through DNS rebinding.
	srv := httpguard.NewServer(httpguard.Guard(mux, c.opts.AllowedHosts))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error(err, "Metrics listener failed")
		}
	}()
	c.mu.Lock()
	c.addr = ln.Addr().String()
	c.mu.Unlock()
	c.log.Info("Serving metrics", "addr", ln.Addr().String(), "pprof", c.opts.PProf)
	return srv, nil
}

// problemKV locates a problem for the log: file, guest and field, each
// only when known (a file that is not JSON has no guest), so that a log
// search for guest="" finds nothing.
func problemKV(p api.Problem) []any {
	var kv []any
	for _, f := range [][2]string{{"file", p.File}, {"guest", p.Guest}, {"field", p.Field}} {
		if f[1] != "" {
			kv = append(kv, f[0], f[1])
		}
	}
	return kv
}

// reload reads the whole desired state again. An invalid state is logged
// problem by problem (the messages of `phoenix validate`) and changes
// nothing; a valid one replaces the last and queues what changed.
func (c *Controller) reload(w *watcher) {
	if err := w.watchFiles(configFiles(c.configDir)); err != nil {
		c.log.V(1).Info("Cannot watch the folder of a config file", "error", err.Error())
	}
	t0 := time.Now()
	cfg, err := c.loads.Load(c.configDir)
	if err == nil && c.opts.Strict {
		err = desired.Strict(cfg)
	}
	if err == nil {
		if missing := missingFiles(c.cfg.Load(), cfg); len(missing) > 0 {
			// A file that vanished (an editor's save, a ConfigMap swap, a
			// mount gone) is not "no guests": nothing of it may be
			// orphaned or pruned on its account.
			err = fmt.Errorf("%s missing; to remove every guest of a file, leave it with an empty list instead", strings.Join(missing, " and "))
		}
	}
	hits, misses := c.loads.Stats()
	c.log.V(1).Info("Config read", "duration", time.Since(t0).String(), "guestsUnchanged", hits, "guestsChecked", misses)
	if err != nil {
		c.metrics.ConfigValid.Set(0)
		c.metrics.ConfigReloads.WithLabelValues(metrics.ResultError).Inc()
		var inv *api.InvalidError
		if errors.As(err, &inv) {
			for _, p := range inv.Problems {
				c.log.Error(errors.New(p.String()), "Invalid desired state; acting on the last valid one", problemKV(p)...)
			}
		} else {
			c.log.Error(err, "Config reload failed; acting on the last valid one")
		}
		return
	}
	for _, w := range cfg.Warnings {
		c.log.Info("Warning: "+w.Msg+" (an error with --strict)", "file", w.File, "guest", w.Guest, "field", w.Field)
	}
	c.metrics.ConfigValid.Set(1)
	c.metrics.ConfigReloads.WithLabelValues(metrics.ResultSuccess).Inc()
	if c.standby.Load() {
		// A standby only checks the files; it loads them for real, and
		// diffs against the host's state, when it starts leading.
		c.log.V(1).Info("Config valid; standing by", "guests", len(cfg.IDs))
		return
	}
	if p, ok := c.host.(hypervisor.Placer); ok {
		// A multi-node backend (pve-api) places new guests by their node
		// field: it must see the state the next reconciles act on.
		p.SetPlacement(cfg)
	}
	prev := c.cfg.Swap(cfg)
	d := diff(prev, cfg)

	c.mu.Lock()
	now := time.Now()
	for id, kind := range d.removed {
		c.markRemoved(id, kind, now)
	}
	for _, id := range d.added {
		delete(c.removed, id)
		delete(c.removedAt, id)
	}
	first := c.initial == nil
	c.mu.Unlock()

	keys := d.enqueue()
	if c.opts.Prune && !first {
		// Guests already gone are looked at again: a prune --prune-max held
		// back may be allowed now that fewer are waiting.
		c.mu.Lock()
		for id := range c.removed {
			if _, just := d.removed[id]; !just {
				keys = append(keys, id)
			}
		}
		c.mu.Unlock()
	}
	if first {
		keys = append(keys, c.seed(cfg)...)
	} else {
		for _, id := range d.added {
			c.seedGuest(id, cfg.Guest(id).Kind)
		}
	}
	c.log.Info("Config loaded", "guests", len(cfg.IDs), "added", len(d.added), "changed", len(d.changed),
		"convergeRequested", len(d.converge), "removed", len(d.removed))
	if first {
		c.mu.Lock()
		c.initial = make(map[api.ID]bool, len(keys))
		for _, id := range keys {
			c.initial[id] = true
		}
		empty := len(c.initial) == 0
		c.mu.Unlock()
		if empty {
			c.markReady()
		}
	}
	for _, id := range keys {
		c.queue.Add(id)
	}
	if !first {
		c.releaseReload()
	}
}

// releaseReload hands back to the system the memory reloads used, once
// the files have been quiet for releaseAfter. A reload parses the whole
// desired state beside the one in force, so the heap peaks at both, and
// the runtime returns what the old one leaves free only slowly: at 10,000
// guests the controller stayed about 35 MB larger after the first edit of
// a file (docs/benchmarks.md). The forced collection waits for a pause in
// the edits: run between two reloads, it slowed the second one.
func (c *Controller) releaseReload() {
	c.releaseMu.Lock()
	defer c.releaseMu.Unlock()
	if c.release != nil {
		c.release.Reset(releaseAfter)
		return
	}
	c.release = time.AfterFunc(releaseAfter, debug.FreeOSMemory)
}

func (c *Controller) stopRelease() {
	c.releaseMu.Lock()
	defer c.releaseMu.Unlock()
	if c.release != nil {
		c.release.Stop()
	}
}

// releaseAfter is how long the files must stay unchanged before the
// memory of their reloads is handed back.
const releaseAfter = time.Second

// seed fills the phase book from the status files at the first valid load
// and returns the guests phoenix recorded that are no longer in the files:
// they are reconciled too (marked Orphaned, or pruned).
func (c *Controller) seed(cfg *api.Config) []api.ID {
	ids, err := c.store.IDs()
	if err != nil {
		c.log.Error(err, "Cannot list status files")
		return nil
	}
	recorded := make(map[api.ID]bool, len(ids))
	for _, id := range ids {
		recorded[id] = true
	}
	// One status file read per recorded guest, on every CPU: at 10,000
	// guests this is a good part of a restart's time to ready. A guest
	// with no status at all (a first sync) is Pending without a look.
	var wg sync.WaitGroup
	next := make(chan api.ID, 256)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				c.seedGuest(id, cfg.Guest(id).Kind)
			}
		}()
	}
	for _, id := range cfg.IDs {
		if recorded[id] {
			next <- id
		} else {
			c.book.set(id, cfg.Guest(id).Kind, api.PhasePending)
		}
	}
	close(next)
	wg.Wait()
	var gone []api.ID
	now := time.Now()
	for _, id := range ids {
		if cfg.Guest(id) != nil {
			continue
		}
		st, err := c.store.Get(id, "")
		if err != nil || st.Kind == "" {
			continue
		}
		if (st.Kind == api.KindLXC && cfg.LXCPath == "") || (st.Kind == api.KindVM && cfg.VMPath == "") {
			// The file its kind lives in is not there: unknown, not gone.
			c.log.Info("Recorded guest's file is missing; leaving it alone", "guest", id, "kind", st.Kind)
			continue
		}
		c.book.set(id, st.Kind, st.Phase)
		c.mu.Lock()
		c.markRemoved(id, st.Kind, now)
		c.mu.Unlock()
		gone = append(gone, id)
	}
	return gone
}

func (c *Controller) seedGuest(id api.ID, kind api.Kind) {
	st, err := c.store.Get(id, kind)
	if err != nil {
		c.book.set(id, kind, api.PhasePending)
		return
	}
	c.book.set(id, kind, st.Phase)
}

// resync queues every guest, so that drift on the host (a guest deleted
// behind phoenix's back) is repaired; with --prune, orphans too.
func (c *Controller) resync() {
	cfg := c.cfg.Load()
	if cfg == nil {
		return
	}
	n := 0
	for _, id := range cfg.IDs {
		c.queue.Add(id)
		n++
	}
	if c.opts.Prune {
		c.mu.Lock()
		for id := range c.removed {
			c.queue.Add(id)
			n++
		}
		c.mu.Unlock()
	}
	c.log.V(1).Info("Resync", "queued", n)
}

func (c *Controller) markReady() {
	if !c.ready.Swap(true) {
		c.log.Info("First full sync done; ready")
	}
}

func (c *Controller) initialDone(id api.ID) {
	c.mu.Lock()
	if c.initial == nil || !c.initial[id] {
		c.mu.Unlock()
		return
	}
	delete(c.initial, id)
	empty := len(c.initial) == 0
	c.mu.Unlock()
	if empty {
		c.markReady()
	}
}

// reconcileSafely is reconcile with a panic turned into an error, so that
// the guest is retried with backoff and the process stays up.
func (c *Controller) reconcileSafely(ctx context.Context, id api.ID) (kind api.Kind, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := plan.Recovered(v)
			c.log.Error(pe, "Reconcile panicked", "guest", id, "stack", string(pe.Stack))
			err = fmt.Errorf("reconcile %s: %w", id, pe)
		}
	}()
	return c.reconcile(ctx, id)
}

// processNext reconciles one key; false means the queue is shut down.
//
// A reconcile's workflow outcomes are queued for the status store's group
// commit (status.Batch) rather than waited for: the worker takes its next
// guest at once, and the reconcile is reported (its metrics, its backoff,
// the queue's Done, the first sync's readiness) by a goroutine once the
// outcomes are on disk. Many outcomes then share one fdatasync round and
// one folder fsync, and nothing is reported done before it is durable. The
// key stays in the queue's processing set until then, so the guest is not
// reconciled twice at once.
func (c *Controller) processNext(ctx context.Context) bool {
	id, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	handedOff := false
	defer func() {
		if !handedOff {
			c.queue.Done(id)
		}
	}()
	if c.stopping.Load() {
		return false
	}
	if t := c.term.Load(); t != nil && !t.Fresh() {
		// This process stalled long enough for the leader lock to expire:
		// another controller may lead now. Act only once a renewal
		// confirms the lock (or stop when it fails).
		c.queue.AddAfter(id, time.Second)
		return true
	}
	start := time.Now()
	batch := &status.Batch{}
	kind, err := c.reconcileSafely(status.WithBatch(ctx, batch), id)
	if ctx.Err() != nil {
		// Cut short by shutdown: not the guest's success or failure. The
		// next start reconciles it again (Provisioning and Failed guests
		// always are); what was queued is still written.
		_ = batch.Wait()
		return false
	}
	if batch.Len() == 0 {
		c.finish(id, kind, err, start)
		return true
	}
	c.committing <- struct{}{}
	handedOff = true
	c.finishing.Add(1)
	go func() {
		defer c.finishing.Done()
		defer func() { <-c.committing }()
		defer c.queue.Done(id)
		if werr := batch.Wait(); werr != nil {
			err = errors.Join(err, werr)
		}
		c.finish(id, kind, err, start)
	}()
	return true
}

// finish reports a reconcile whose status writes are on disk: its
// duration and result, its backoff, and the first sync's progress.
func (c *Controller) finish(id api.ID, kind api.Kind, err error, start time.Time) {
	log := c.log.WithValues("guest", id, "kind", kind)
	if kind != "" {
		c.metrics.ReconcileDuration.WithLabelValues(string(kind)).Observe(time.Since(start).Seconds())
	}
	result := metrics.ResultSuccess
	switch {
	case err == nil:
		c.queue.Forget(id)
		log.V(1).Info("Reconcile finished", "duration", time.Since(start).String())
	case plan.IsTerminal(err):
		result = metrics.ResultError
		c.queue.Forget(id)
		log.Error(err, "Reconcile failed; not retrying until the files change")
	default:
		result = metrics.ResultError
		c.queue.AddRateLimited(id)
		log.Error(err, "Reconcile failed; will retry", "retries", c.queue.NumRequeues(id))
	}
	if kind != "" {
		c.metrics.ReconcileTotal.WithLabelValues(string(kind), result).Inc()
	}
	c.initialDone(id)
}

// markRemoved records a guest that left the files; the grace before a
// prune runs from the first time it was seen gone. c.mu is held.
func (c *Controller) markRemoved(id api.ID, kind api.Kind, now time.Time) {
	c.removed[id] = kind
	if _, ok := c.removedAt[id]; !ok {
		c.removedAt[id] = now
	}
}

// missingFiles names the guest files the previous valid state was read
// from that the new one lacks.
func missingFiles(prev, next *api.Config) []string {
	if prev == nil {
		return nil
	}
	var out []string
	if prev.LXCPath != "" && next.LXCPath == "" {
		out = append(out, prev.LXCPath)
	}
	if prev.VMPath != "" && next.VMPath == "" {
		out = append(out, prev.VMPath)
	}
	return out
}
