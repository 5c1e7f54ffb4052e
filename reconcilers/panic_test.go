package reconcilers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// panicky is a host whose operations on one guest panic.
type panicky struct {
	hypervisor.Host
	at api.ID
}

func (p *panicky) Create(ctx context.Context, k api.Kind, id api.ID, s hypervisor.CreateSpec) error {
	if id == p.at {
		panic("injected")
	}
	return p.Host.Create(ctx, k, id, s)
}

func (p *panicky) Clone(ctx context.Context, k api.Kind, src, dst api.ID, s hypervisor.CloneSpec) error {
	if dst == p.at {
		panic("injected")
	}
	return p.Host.Clone(ctx, k, src, dst, s)
}

// memStatus is an in-memory StatusWriter.
type memStatus struct {
	mu sync.Mutex
	m  map[api.ID]*api.Status
}

func (s *memStatus) Update(id api.ID, kind api.Kind, fn func(*api.Status)) (*api.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[api.ID]*api.Status{}
	}
	st := s.m[id]
	if st == nil {
		st = &api.Status{ID: id.String(), Kind: kind}
		s.m[id] = st
	}
	fn(st)
	return st, nil
}

func (s *memStatus) Delete(id api.ID) error { return nil }

// TestRunner_panicRecordsInternalErrorAndOthersGoOn: a panic in one
// guest's workflow fails that guest (status Failed, reason InternalError),
// cancels what needs it, and every other guest of the lab is made.
func TestRunner_panicRecordsInternalErrorAndOthersGoOn(t *testing.T) {
	cfg := load(t, referenceLab)
	p := plan.Converge(cfg, cfg.IDs)
	// The panicking guest: one that others need, so cancellation shows.
	var at int
	for i, a := range p.Actions {
		for _, j := range a.Needs {
			if p.Actions[j].Action == plan.ActCreate && i != j {
				at = j
			}
		}
	}
	bad := p.Actions[at].ID
	host := &panicky{Host: newSim(t, 0), at: bad}
	st := &memStatus{}
	runner := &Runner{Workflows: NewWorkflows(host, Scripts{}), Config: cfg, Status: st}
	out := plan.Execute(context.Background(), p, 4, runner.Run, nil)

	needsBad := make([]bool, len(p.Actions))
	for i, a := range p.Actions { // plans list actions after what they need
		for _, j := range a.Needs {
			if j == at || needsBad[j] {
				needsBad[i] = true
			}
		}
	}
	ok := 0
	for i, a := range p.Actions {
		r := out.Results[i]
		switch {
		case i == at:
			var pe *plan.PanicError
			if r.Result != plan.ResultFailed || !errors.As(r.Err, &pe) {
				t.Errorf("%s: %s %v, want failed with a PanicError", a.ID, r.Result, r.Err)
			}
		case needsBad[i]:
			if r.Result != plan.ResultCancelled {
				t.Errorf("%s needs %s: %s, want cancelled", a.ID, bad, r.Result)
			}
		case r.Result != plan.ResultOK:
			t.Errorf("%s is independent of %s: %s %v, want ok", a.ID, bad, r.Result, r.Err)
		default:
			ok++
		}
	}
	if ok == 0 {
		t.Error("no independent action ran")
	}
	rec := st.m[bad]
	if rec == nil || rec.Phase != api.PhaseFailed || len(rec.Conditions) == 0 || rec.Conditions[0].Reason != api.ReasonInternalError ||
		!strings.Contains(rec.LastError, "internal error: panic: injected") {
		t.Errorf("status of %s: %+v, want Failed with reason InternalError", bad, rec)
	}
}
