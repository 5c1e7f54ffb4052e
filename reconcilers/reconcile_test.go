package reconcilers

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
)

// smallLab: 941 is cloned from 900 and needs 953 (itself a clone of 900);
// 8001 is a VM cloned from the VM template 8000.
const smallLab = "../testdata/small"

// fixture is one reconciler's world: the small lab's desired state, a
// simulated host, a status store on disk and the locks, as the controller
// wires them.
type fixture struct {
	t     *testing.T
	cfg   atomic.Pointer[api.Config]
	sim   *sim.Sim
	host  *recorder
	store *status.Store
	locks *lock.Keyed[api.ID]
	rec   *metricsLog
	logs  *logLines
	prune PrunePolicy
	// statusStore replaces store as the reconciler's status store, when set.
	statusStore StatusStore
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, sim: newSim(t, 0), locks: &lock.Keyed[api.ID]{}, rec: &metricsLog{}, logs: &logLines{}}
	f.host = &recorder{Host: f.sim}
	var err error
	if f.store, err = status.NewStore(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	f.cfg.Store(load(t, smallLab))
	return f
}

func (f *fixture) Desired() *api.Config { return f.cfg.Load() }

func (f *fixture) deps() Deps {
	var st StatusStore = f.store
	if f.statusStore != nil {
		st = f.statusStore
	}
	return Deps{
		Host:      f.host,
		Status:    st,
		Workflows: NewWorkflows(f.host, Scripts{}),
		Locks:     f.locks,
		Desired:   f,
		Prune:     f.prune,
		Recorder:  f.rec,
		Parallel:  4,
		Log:       f.logs.logger(),
	}
}

// reconcileLimit bounds one reconcile of the small lab, which takes
// milliseconds. A reconcile that never returns fails its test at the limit:
// plan.Execute waits for its running actions without watching ctx, so a
// plan with an action that can never start (as a skipped kind check once
// produced) would otherwise hang the whole package until go test's -timeout.
const reconcileLimit = 30 * time.Second

// reconcile runs the reconciler of kind on id, as a controller worker does.
func (f *fixture) reconcile(kind api.Kind, id api.ID) (Result, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), reconcileLimit)
	defer cancel()
	run := NewLXC(f.deps()).Reconcile
	if kind == api.KindVM {
		run = NewVM(f.deps()).Reconcile
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := run(ctx, Request{ID: id})
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(reconcileLimit + 5*time.Second):
		f.t.Fatalf("reconcile %s %s did not return within %s", kind, id, reconcileLimit)
		return Result{}, nil
	}
}

// mustReconcile reconciles and fails the test on an error or a result
// that asks the loop for anything.
func (f *fixture) mustReconcile(kind api.Kind, id api.ID) {
	f.t.Helper()
	res, err := f.reconcile(kind, id)
	if err != nil {
		f.t.Fatalf("reconcile %s %s: %v", kind, id, err)
	}
	if res != (Result{}) {
		f.t.Fatalf("reconcile %s %s: result %+v, want none", kind, id, res)
	}
}

// edit replaces the desired state by the small lab with edit applied to
// its LXC file's guests.
func (f *fixture) edit(edit func(lxc map[string]map[string]any)) {
	f.t.Helper()
	dir := f.t.TempDir()
	data, err := os.ReadFile(filepath.Join(smallLab, api.LXCFile))
	if err != nil {
		f.t.Fatal(err)
	}
	var doc struct {
		LXC map[string]map[string]any `json:"lxc_configs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		f.t.Fatal(err)
	}
	edit(doc.LXC)
	if data, err = json.Marshal(doc); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, api.LXCFile), data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	vm, err := os.ReadFile(filepath.Join(smallLab, api.VMFile))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, api.VMFile), vm, 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.cfg.Store(load(f.t, dir))
}

func (f *fixture) status(id api.ID) *api.Status {
	f.t.Helper()
	st, err := f.store.Get(id, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) exists(kind api.Kind, id api.ID) bool {
	f.t.Helper()
	_, ok, err := hypervisor.Exists(context.Background(), f.sim, kind, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// destroy removes a guest from the host, as someone would by hand.
func (f *fixture) destroy(kind api.Kind, id api.ID) {
	f.t.Helper()
	ctx := context.Background()
	g, err := f.sim.Get(ctx, kind, id)
	if err != nil {
		f.t.Fatal(err)
	}
	if g.Running {
		if err := f.sim.Stop(ctx, kind, id); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.sim.Destroy(ctx, kind, id); err != nil {
		f.t.Fatal(err)
	}
}

// calls returns and clears the host-changing calls made so far.
func (f *fixture) calls() []string {
	f.host.mu.Lock()
	defer f.host.mu.Unlock()
	c := f.host.calls
	f.host.calls = nil
	return c
}

// metricsLog is a Recorder that keeps what it hears.
type metricsLog struct {
	mu        sync.Mutex
	converges int
	steps     []string
	drifted   map[api.ID]bool
	pruned    []error
}

func (m *metricsLog) ConvergeStarted(api.Kind) { m.mu.Lock(); m.converges++; m.mu.Unlock() }
func (m *metricsLog) StepDone(_ api.Kind, step string, _ time.Duration) {
	m.mu.Lock()
	m.steps = append(m.steps, step)
	m.mu.Unlock()
}

func (m *metricsLog) Drifted(id api.ID, _ api.Kind, drifted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.drifted == nil {
		m.drifted = map[api.ID]bool{}
	}
	m.drifted[id] = drifted
}

func (m *metricsLog) Pruned(_ api.Kind, err error) {
	m.mu.Lock()
	m.pruned = append(m.pruned, err)
	m.mu.Unlock()
}

// logLines collects log messages with their level, for assertions on what
// an operator reads.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
	}, funcr.Options{Verbosity: 2})
}

func (l *logLines) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, `"msg"="`+msg+`"`) {
			n++
		}
	}
	return n
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func created(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "create ") || strings.HasPrefix(c, "clone ") {
			out = append(out, c)
		}
	}
	return out
}

// A guest missing on the host is created with the dependencies it lacks,
// every one ends Ready with its spec's hash, and a second pass changes
// nothing on the host.
func TestReconcile_missingChainCreatedOnce(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	got := created(f.calls())
	want := []string{"create 900", "clone 953", "clone 941"}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("first pass created %v, want %v", got, want)
	}
	for _, id := range []api.ID{900, 953, 941} {
		st := f.status(id)
		if st.Phase != api.PhaseReady || st.ObservedSpecHash != f.Desired().Guest(id).Hash {
			t.Errorf("%s after the first pass: phase %s, hash %q", id, st.Phase, st.ObservedSpecHash)
		}
	}
	if f.logs.count("Reconciled guest") != 1 {
		t.Errorf("want one \"Reconciled guest\" line:\n%s", f.logs)
	}
	// Step durations are recorded for the steps that ran: 941 has no
	// volumes, so that step is skipped.
	if !slices.Contains(f.rec.steps, "define") || slices.Contains(f.rec.steps, "volumes") {
		t.Errorf("step durations recorded for %v; want define, not the skipped volumes", f.rec.steps)
	}
	if n, failed := f.logs.count("Action done"), f.logs.count("Action failed"); n != 3 || failed != 0 {
		t.Errorf("%d actions done, %d failed; want 3 and 0:\n%s", n, failed, f.logs)
	}

	f.mustReconcile(api.KindLXC, 941)
	if c := f.calls(); len(c) > 0 {
		t.Errorf("second pass changed the host: %v", c)
	}
	if f.logs.count("Reconciling guest") != 1 {
		t.Errorf("second pass did work:\n%s", f.logs)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// A guest whose status is not Ready (a crash left it Provisioning) is
// finished although the host has it; its existing dependencies are left
// alone.
func TestReconcile_unfinishedGuestFinished(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	if _, err := f.store.Update(941, api.KindLXC, func(s *api.Status) { s.Phase = api.PhaseProvisioning }); err != nil {
		t.Fatal(err)
	}
	f.calls()
	f.mustReconcile(api.KindLXC, 941)
	calls := f.calls()
	if len(calls) == 0 {
		t.Fatal("a Provisioning guest was not worked on")
	}
	for _, c := range calls {
		if !strings.HasSuffix(c, " 941") {
			t.Errorf("finishing 941 touched another guest: %s", c)
		}
	}
	if st := f.status(941); st.Phase != api.PhaseReady {
		t.Errorf("941 is %s after being finished", st.Phase)
	}
	if !strings.Contains(f.logs.String(), `"reason"="not ready"`) {
		t.Errorf("the log does not say why 941 was reconciled:\n%s", f.logs)
	}
}

// A changed spec runs the guest's own workflow and nothing else.
func TestReconcile_specChangeAppliesThatGuestOnly(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	f.calls()
	f.edit(func(lxc map[string]map[string]any) { lxc["941"]["memory_mb"] = 4096 })
	f.mustReconcile(api.KindLXC, 941)
	calls := f.calls()
	if !slices.Contains(calls, "set 941") {
		t.Errorf("the new memory was not set: %v", calls)
	}
	for _, c := range calls {
		if !strings.HasSuffix(c, " 941") {
			t.Errorf("a change of 941 touched another guest: %s", c)
		}
	}
	g, err := f.sim.Get(context.Background(), api.KindLXC, 941)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config["memory"] != "4096" {
		t.Errorf("memory on the host %q, want 4096", g.Config["memory"])
	}
	if st := f.status(941); st.ObservedSpecHash != f.Desired().Guest(941).Hash {
		t.Error("the new spec's hash was not recorded")
	}
}

// A new converge token runs the workflow of the guest's whole chain and is
// recorded, so the next pass does not converge again; a failed converge
// records its token too.
func TestReconcile_convergeToken(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	f.calls()
	chain := []api.ID{900, 953, 941}
	applied := map[api.ID]time.Time{}
	for _, id := range chain {
		applied[id] = *f.status(id).LastAppliedAt
	}
	// Drift first: the converge puts it back and clears the report.
	if err := f.sim.Set(context.Background(), api.KindLXC, 941, map[string]string{"memory": "512"}); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(api.KindLXC, 941)
	f.edit(func(lxc map[string]map[string]any) {
		lxc["941"]["annotations"] = map[string]string{api.ConvergeAnnotation: "t1"}
	})
	f.mustReconcile(api.KindLXC, 941)
	if c := f.status(941).Condition(api.ConditionDrifted); c == nil || c.Status != "False" {
		t.Errorf("Drifted condition after the converge put memory back: %+v", c)
	}
	if g, _ := f.sim.Get(context.Background(), api.KindLXC, 941); g.Config["memory"] != "2048" {
		t.Errorf("memory %s after the converge, want 2048", g.Config["memory"])
	}
	for _, id := range chain {
		if at := f.status(id).LastAppliedAt; !at.After(applied[id]) {
			t.Errorf("converge did not run %s's workflow (applied at %s, before %s)", id, at, applied[id])
		}
	}
	if st := f.status(941); st.LastHandledConvergeAt != "t1" {
		t.Errorf("token recorded %q, want t1", st.LastHandledConvergeAt)
	}
	if f.rec.converges != 1 {
		t.Errorf("%d converges recorded, want 1", f.rec.converges)
	}
	f.calls()
	f.mustReconcile(api.KindLXC, 941)
	if c := f.calls(); len(c) > 0 {
		t.Errorf("a handled token converged again: %v\n%s", c, f.logs)
	}

	f.edit(func(lxc map[string]map[string]any) {
		lxc["941"]["annotations"] = map[string]string{api.ConvergeAnnotation: "t2"}
	})
	f.host.failRun = 941
	if _, err := f.reconcile(api.KindLXC, 941); err == nil {
		t.Fatal("a converge whose workflow failed reported success")
	}
	st := f.status(941)
	if st.LastHandledConvergeAt != "t2" || st.Phase != api.PhaseFailed {
		t.Errorf("after a failed converge: token %q, phase %s; want t2, Failed", st.LastHandledConvergeAt, st.Phase)
	}
}

// When a dependency fails, the guest that needs it never runs, and its
// status says Failed with the dependency's error rather than the Ready of
// its last run.
func TestReconcile_failedDependencyFailsTheTarget(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	f.destroy(api.KindLXC, 953)
	if _, err := f.store.Update(941, api.KindLXC, func(s *api.Status) { s.Phase = api.PhasePending }); err != nil {
		t.Fatal(err)
	}
	f.host.failClone = 953
	_, err := f.reconcile(api.KindLXC, 941)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("reconcile 941 with 953 failing: %v", err)
	}
	if n := strings.Count(err.Error(), "injected failure"); n != 1 {
		t.Errorf("the error names the failure %d times: %v", n, err)
	}
	if f.logs.count("Action failed") != 1 {
		t.Errorf("want one \"Action failed\" line:\n%s", f.logs)
	}
	st := f.status(941)
	if st.Phase != api.PhaseFailed || !strings.Contains(st.LastError, "injected") {
		t.Errorf("941: phase %s, error %q; want Failed naming 953's failure", st.Phase, st.LastError)
	}
	if c := st.Condition(api.ConditionReady); c == nil || c.Status != "False" {
		t.Errorf("941's Ready condition %+v, want False", c)
	}
}

// Keys changed on the host behind phoenix's back are reported (the Drifted
// condition, the recorder) and left as they are; once the host matches
// again the report clears. A guest that never drifted costs no status
// write.
func TestReconcile_driftReportedNotRepaired(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	ctx := context.Background()
	f.mustReconcile(api.KindLXC, 941)
	if c := f.status(941).Condition(api.ConditionDrifted); c != nil {
		t.Fatalf("Drifted condition on a guest that never drifted: %+v", c)
	}
	if err := f.sim.Set(ctx, api.KindLXC, 941, map[string]string{"memory": "512"}); err != nil {
		t.Fatal(err)
	}
	f.calls()
	f.mustReconcile(api.KindLXC, 941)
	c := f.status(941).Condition(api.ConditionDrifted)
	if c == nil || c.Status != "True" || c.Reason != api.ReasonHostDrift || !strings.Contains(c.Message, "memory") {
		t.Errorf("Drifted condition %+v, want True naming memory", c)
	}
	if !f.rec.drifted[941] {
		t.Error("the drift was not recorded")
	}
	if calls := f.calls(); len(calls) > 0 {
		t.Errorf("the drift was repaired without a converge: %v", calls)
	}
	if n := f.logs.count("Guest drifted on the host"); n != 1 {
		t.Errorf("%d drift log lines, want 1", n)
	}
	// The same drift again: no new log line.
	f.mustReconcile(api.KindLXC, 941)
	if n := f.logs.count("Guest drifted on the host"); n != 1 {
		t.Errorf("the same drift logged %d times", n)
	}
	if err := f.sim.Set(ctx, api.KindLXC, 941, map[string]string{"memory": "2048"}); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(api.KindLXC, 941)
	if c := f.status(941).Condition(api.ConditionDrifted); c == nil || c.Status != "False" || c.Reason != api.ReasonInSync {
		t.Errorf("Drifted condition after the host matches again: %+v", c)
	}
	if f.rec.drifted[941] {
		t.Error("the recorder still counts 941 as drifted")
	}
	if n, m := f.logs.count("Guest drifted on the host"), f.logs.count("Guest no longer drifted on the host"); n != 1 || m != 1 {
		t.Errorf("%d drift and %d end-of-drift log lines, want 1 and 1:\n%s", n, m, f.logs)
	}
}

// A workflow that re-applies a drifted guest clears its Drifted condition.
func TestReconcile_reapplyClearsDrift(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	if err := f.sim.Set(context.Background(), api.KindLXC, 941, map[string]string{"memory": "512"}); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(api.KindLXC, 941)
	f.edit(func(lxc map[string]map[string]any) { lxc["941"]["cores"] = 3 })
	f.mustReconcile(api.KindLXC, 941)
	c := f.status(941).Condition(api.ConditionDrifted)
	if c == nil || c.Status != "False" {
		t.Errorf("Drifted condition after the workflow re-applied 941: %+v", c)
	}
	if f.logs.count("Reconciled guest") != 2 {
		t.Errorf("want two \"Reconciled guest\" lines:\n%s", f.logs)
	}
}

// failDriftClear is a status store that cannot save a Drifted condition
// going from True to False (a full disk at that moment).
type failDriftClear struct{ *status.Store }

func (s failDriftClear) Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	cur, err := s.Store.Get(id, kind)
	if err != nil {
		return nil, err
	}
	was := cur.Condition(api.ConditionDrifted)
	next := *cur
	next.Conditions = slices.Clone(cur.Conditions)
	fn(&next)
	if now := next.Condition(api.ConditionDrifted); was != nil && was.Status == "True" && now != nil && now.Status == "False" {
		return nil, errors.New("no space left on device")
	}
	return s.Store.Update(id, kind, fn)
}

// A re-applied guest whose Drifted condition cannot be cleared fails its
// reconcile: the error is reported (and retried) rather than swallowed
// while the status keeps saying the guest drifted.
func TestReconcile_driftClearFailureReported(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 941)
	if err := f.sim.Set(context.Background(), api.KindLXC, 941, map[string]string{"memory": "512"}); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(api.KindLXC, 941)
	f.statusStore = failDriftClear{f.store}
	f.edit(func(lxc map[string]map[string]any) { lxc["941"]["cores"] = 3 })
	_, err := f.reconcile(api.KindLXC, 941)
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("reconcile with the drift clear failing: %v; want the store's error", err)
	}
	if c := f.status(941).Condition(api.ConditionDrifted); c == nil || c.Status != "True" {
		t.Errorf("Drifted condition %+v; the failed write should have left it True", c)
	}
	if f.logs.count("Reconciled guest") != 1 {
		t.Errorf("a reconcile whose status write failed was logged as done:\n%s", f.logs)
	}
}

// signalLocks is the shared lock that tells the test when a reconcile asks
// for a guest's lock.
type signalLocks struct {
	*lock.Keyed[api.ID]
	id     api.ID
	wanted chan struct{}
	once   sync.Once
}

func (s *signalLocks) Lock(ctx context.Context, id api.ID) (func(), error) {
	if id == s.id {
		s.once.Do(func() { close(s.wanted) })
	}
	return s.Keyed.Lock(ctx, id)
}

func (s *signalLocks) RLock(ctx context.Context, id api.ID) (func(), error) {
	if id == s.id {
		s.once.Do(func() { close(s.wanted) })
	}
	return s.Keyed.RLock(ctx, id)
}

// While another worker holds a dependency's lock, a reconcile that planned
// the dependency as existing waits for it and looks again: here the other
// worker's rebuild of 900 failed half-way (destroyed, not re-created), and
// the reconcile of 941 builds 900 before cloning 941 from it instead of
// failing on a clone source that is gone.
func TestReconcile_existingDependencyWaitedFor(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 953)
	applied953 := *f.status(953).LastAppliedAt
	ctx := context.Background()
	locks := &signalLocks{Keyed: f.locks, id: 900, wanted: make(chan struct{})}
	d := f.deps()
	d.Locks = locks
	unlock, err := f.locks.Lock(ctx, 900) // the other worker
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := NewLXC(d).Reconcile(ctx, Request{ID: 941})
		done <- outcome{res, err}
	}()
	select {
	case <-locks.wanted:
	case o := <-done:
		unlock()
		t.Fatalf("941 was reconciled (%v) without waiting for 900, which another worker holds", o.err)
	case <-time.After(time.Minute):
		t.Fatal("the reconcile never asked for 900's lock")
	}
	if f.exists(api.KindLXC, 941) {
		t.Fatal("941 was built while its clone source 900 was locked by another worker")
	}
	f.destroy(api.KindLXC, 900)
	f.calls()
	unlock()
	o := <-done
	if o.err != nil {
		t.Fatalf("reconcile 941 after 900 vanished under another worker: %v", o.err)
	}
	if got := created(f.calls()); !slices.Equal(got, []string{"create 900", "clone 941"}) {
		t.Errorf("created %v; want 900 rebuilt, then 941 cloned from it", got)
	}
	if st := f.status(941); st.Phase != api.PhaseReady {
		t.Errorf("941 is %s", st.Phase)
	}
	// 953 exists and is Ready: waited for, looked at, left alone.
	if at := *f.status(953).LastAppliedAt; !at.Equal(applied953) {
		t.Errorf("953's workflow ran again (applied at %s, before %s)", at, applied953)
	}
}

// Reconciles of guests that share an existing dependency check it side by
// side: one holding the dependency's shared lock does not hold up another.
func TestReconcile_existingDependencyCheckedSideBySide(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 953)
	f.calls()
	ctx := context.Background()
	runlock, err := f.locks.RLock(ctx, 900) // another worker checking 900
	if err != nil {
		t.Fatal(err)
	}
	defer runlock()
	done := make(chan error, 1)
	go func() {
		_, err := NewLXC(f.deps()).Reconcile(ctx, Request{ID: 941})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reconcile 941: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("941 waited for a worker that only checks its clone source 900")
	}
	if got := created(f.calls()); !slices.Equal(got, []string{"clone 941"}) {
		t.Errorf("created %v; want 941 cloned from the existing 900", got)
	}
}

// A dependency whose last workflow failed is finished before the guest
// that needs it is built, although the host has it: its recorded phase
// counts, not only its presence.
func TestReconcile_failedDependencyFinishedFirst(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 953)
	if _, err := f.store.Update(953, api.KindLXC, func(s *api.Status) { s.Phase = api.PhaseFailed }); err != nil {
		t.Fatal(err)
	}
	f.mustReconcile(api.KindLXC, 941)
	if st := f.status(953); st.Phase != api.PhaseReady {
		t.Errorf("953 is still %s after 941's chain was created", st.Phase)
	}
}

// A guest that left the files: gone from the host too, it loses its
// status and the loop forgets it; still on the host, it is marked Orphaned
// and left alone, or destroyed when the prune policy allows.
func TestReconcile_removedGuest(t *testing.T) {
	for _, tt := range []struct {
		name      string
		onHost    bool
		prune     PrunePolicy
		want      Result
		wantPhase api.Phase // "" : no status left
		wantHost  bool
	}{
		{name: "gone from the host", want: Result{Forget: true}},
		{name: "on the host", onHost: true, wantPhase: api.PhaseOrphaned, wantHost: true},
		{name: "prune allowed", onHost: true, prune: fixedPolicy{ok: true}, want: Result{Forget: true}},
		{name: "prune within grace", onHost: true, prune: fixedPolicy{wait: time.Minute}, want: Result{RequeueAfter: time.Minute}, wantPhase: api.PhaseOrphaned, wantHost: true},
		{name: "prune refused", onHost: true, prune: fixedPolicy{}, wantPhase: api.PhaseOrphaned, wantHost: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.prune = tt.prune
			f.mustReconcile(api.KindLXC, 941)
			if !tt.onHost {
				f.destroy(api.KindLXC, 941)
			}
			f.edit(func(lxc map[string]map[string]any) { delete(lxc, "941") })
			res, err := f.reconcile(api.KindLXC, 941)
			if err != nil {
				t.Fatal(err)
			}
			if res != tt.want {
				t.Errorf("result %+v, want %+v", res, tt.want)
			}
			st := f.status(941)
			if st.Phase != tt.wantPhase && !(tt.wantPhase == "" && st.Phase == api.PhasePending) {
				t.Errorf("status phase %q, want %q", st.Phase, tt.wantPhase)
			}
			if tt.wantPhase == "" {
				if _, err := os.Stat(filepath.Join(f.store.Dir(), "941.json")); !os.IsNotExist(err) {
					t.Errorf("941's status file is still there: %v", err)
				}
			}
			if got := f.exists(api.KindLXC, 941); got != tt.wantHost {
				t.Errorf("941 on the host: %v, want %v", got, tt.wantHost)
			}
			if tt.prune != nil && tt.prune.(fixedPolicy).ok && (len(f.rec.pruned) != 1 || f.rec.pruned[0] != nil) {
				t.Errorf("prunes recorded %v, want one success", f.rec.pruned)
			}
			// Marked once: a second pass writes nothing and logs nothing.
			if tt.wantPhase == api.PhaseOrphaned {
				n := f.logs.count("Guest left the files; marked Orphaned and left alone")
				if _, err := f.reconcile(api.KindLXC, 941); err != nil {
					t.Fatal(err)
				}
				if m := f.logs.count("Guest left the files; marked Orphaned and left alone"); n != 1 || m != 1 {
					t.Errorf("Orphaned logged %d then %d times, want once", n, m)
				}
			}
		})
	}
}

type fixedPolicy struct {
	ok   bool
	wait time.Duration
}

func (p fixedPolicy) MayPrune(logr.Logger, api.ID) (bool, time.Duration) { return p.ok, p.wait }

// An ID moved from the LXC file to the VM file while the host still has the
// container is refused as invalid, its status says why, and the host is
// left as it was.
func TestReconcile_kindMoveRefused(t *testing.T) {
	f := newFixture(t)
	f.mustReconcile(api.KindLXC, 953)
	f.calls()
	// 953's status says LXC; the files now say VM 953 is a clone of 8000.
	cfg := f.Desired()
	vm := *cfg.Guest(8001)
	vm.ID = 953
	cfg.Guests[953] = &vm
	_, err := f.reconcile(api.KindVM, 953)
	var inv *api.InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "pct destroy 953") {
		t.Fatalf("reconcile of a kind move: %v; want an InvalidError naming pct destroy", err)
	}
	st := f.status(953)
	if st.Phase != api.PhaseFailed || st.Kind != api.KindLXC || !strings.Contains(st.LastError, "moved from the lxc file") {
		t.Errorf("status %s %s %q", st.Kind, st.Phase, st.LastError)
	}
	if c := f.calls(); len(c) > 0 {
		t.Errorf("a refused kind move changed the host: %v", c)
	}
}

// A guest handed to the reconciler of the other kind (its kind changed in
// the files since it was queued) is sent back to the loop untouched.
func TestReconcile_otherKindRequeued(t *testing.T) {
	f := newFixture(t)
	res, err := f.reconcile(api.KindVM, 941)
	if err != nil || res != (Result{Requeue: true}) {
		t.Fatalf("VM reconciler on container 941: %+v, %v; want a requeue", res, err)
	}
	if c := f.calls(); len(c) > 0 {
		t.Errorf("the wrong reconciler changed the host: %v", c)
	}
}

// Before a valid desired state exists, nothing is done, not even to
// guests that look absent from it.
func TestReconcile_noDesiredStateYet(t *testing.T) {
	f := newFixture(t)
	f.cfg.Store(nil)
	if _, err := f.reconcile(api.KindLXC, 941); err == nil {
		t.Fatal("a reconcile without desired state succeeded")
	}
	if c := f.calls(); len(c) > 0 {
		t.Errorf("changed the host: %v", c)
	}
}

// A plan whose scripts are missing is refused before the host is touched:
// the guest is Failed with ScriptsMissing naming the scripts.
func TestReconcile_preflightRefusesMissingScripts(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	d := f.deps()
	d.Scripts = func() Scripts { return Scripts{Dir: dir} }
	_, err := NewLXC(d).Reconcile(context.Background(), Request{ID: 941})
	if err == nil || !strings.Contains(err.Error(), "preflight") {
		t.Fatalf("reconcile with no scripts in place: %v", err)
	}
	// A dependency's script is named with the dependency; the guest's own
	// are not prefixed with it.
	if msg := err.Error(); !strings.Contains(msg, `lxc 900 (needed first): features script "base_setup"`) || strings.Contains(msg, "lxc 941 (needed first)") {
		t.Errorf("preflight message does not say whose scripts are missing: %v", err)
	}
	st := f.status(941)
	c := st.Condition(api.ConditionReady)
	if st.Phase != api.PhaseFailed || c == nil || c.Reason != api.ReasonScriptsMissing || !strings.Contains(st.LastError, "app.sh") {
		t.Errorf("status %s %+v %q; want Failed, ScriptsMissing naming app.sh", st.Phase, c, st.LastError)
	}
	if calls := f.calls(); len(calls) > 0 {
		t.Errorf("the host was touched: %v", calls)
	}
}

// A guest missing as its kind while the host has its ID as the other kind
// is refused, and nothing is made.
func TestReconcile_otherKindOnTheHostRefused(t *testing.T) {
	f := newFixture(t)
	if err := f.sim.Create(context.Background(), api.KindVM, 953, hypervisor.CreateSpec{Source: "local:iso/noble.img"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.reconcile(api.KindLXC, 953)
	var inv *api.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("reconcile of LXC 953 while the host has VM 953: %v; want an InvalidError", err)
	}
	if st := f.status(953); st.Phase != api.PhaseFailed {
		t.Errorf("953 is %s, want Failed", st.Phase)
	}
	if calls := created(f.calls()); len(calls) > 0 {
		t.Errorf("made %v", calls)
	}
}
