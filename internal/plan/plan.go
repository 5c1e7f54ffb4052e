package plan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// Actions, as in the -o json document.
const (
	ActCreate  = "create"
	ActSkip    = "skip"
	ActStart   = "start"
	ActStop    = "stop"
	ActRestart = "restart"
	ActDelete  = "delete"
)

// Reasons, as in the -o json document.
const (
	// ReasonTarget: the user named the guest.
	ReasonTarget = "target"
	// ReasonMissingDependency: a target needs the guest and it does not exist.
	ReasonMissingDependency = "missing-dependency"
	// ReasonExists: a dependency that exists already; create leaves it be.
	ReasonExists = "exists"
	// ReasonConverge: part of a converged chain.
	ReasonConverge = "converge"
	// ReasonDependency: a target needs the guest running.
	ReasonDependency = "dependency"
	// ReasonRunning, ReasonStopped, ReasonAbsent: the guest is already so.
	ReasonRunning = "running"
	ReasonStopped = "stopped"
	ReasonAbsent  = "absent"
)

// Action is one node of a plan.
type Action struct {
	ID     api.ID
	Kind   api.Kind
	Action string
	Reason string
	// Needs holds the indices of the actions that must finish first.
	Needs []int
	Guest *api.Guest
	// Changes, filled in for a dry run, are what the action would change
	// on the host, key by key.
	Changes []Change
}

// Plan is a DAG of actions, listed in a valid execution order.
type Plan struct {
	Verb    string
	Targets []api.ID
	Actions []*Action
}

// String renders the plan one action per line, for --dry-run and golden
// tests.
func (p *Plan) String() string {
	var b strings.Builder
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "%-7s %-9s %-3s %s", a.Action, a.ID, a.Kind, a.Reason)
		if len(a.Needs) > 0 {
			ids := make([]string, len(a.Needs))
			for i, n := range a.Needs {
				ids[i] = p.Actions[n].ID.String()
			}
			fmt.Fprintf(&b, " (after %s)", strings.Join(ids, ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// State is what planning needs to know of a guest on the host.
type State struct {
	Exists, Running bool
	// Unfinished: the guest exists but its create workflow never finished
	// (a clone source without its template snapshot or conversion, or a
	// recorded phase of Failed or Provisioning). create finishes it rather
	// than skipping it, so that a rerun after a failure completes the job.
	Unfinished bool
}

// Lookup tells planning whether a guest exists and runs.
type Lookup func(ctx context.Context, kind api.Kind, id api.ID) (State, error)

// StatusReader reads recorded guest status; status.Store implements it.
type StatusReader interface {
	Get(id api.ID, kind api.Kind) (*api.Status, error)
}

// HostLookup asks the host, and the recorded status when st is not nil.
func HostLookup(h hypervisor.Host, cfg *api.Config, st StatusReader) Lookup {
	return func(ctx context.Context, kind api.Kind, id api.ID) (State, error) {
		g, ok, err := hypervisor.Probe(ctx, h, kind, id)
		if err != nil || !ok {
			return State{}, err
		}
		s := State{Exists: true, Running: g.Running}
		if s.Unfinished, err = Unfinished(ctx, h, cfg.Guest(id), g); err != nil {
			return State{}, err
		}
		if st != nil {
			if rec, err := st.Get(id, kind); err == nil && (rec.Phase == api.PhaseFailed || rec.Phase == api.PhaseProvisioning) {
				s.Unfinished = true
			}
		}
		return s, nil
	}
}

// Unfinished reports whether the host shows that spec's create workflow
// did not finish on guest g, whatever its recorded status says: a VM
// template not converted, or a clone source without its template snapshot
// (deleted by hand, or lost with a rollback). A clone of it would fail.
// g may come from hypervisor.Probe: only the snapshot case needs the
// snapshots, and a backend whose probe skipped them (a StateReader) is
// asked for them then.
func Unfinished(ctx context.Context, h hypervisor.Host, spec *api.Guest, g *hypervisor.Guest) (bool, error) {
	if spec == nil || g == nil {
		return false, nil
	}
	switch {
	case spec.Spec.IsTemplate:
		return !g.Template, nil
	case spec.Spec.TemplateSnapshotName != "":
		if _, cheap := h.(hypervisor.StateReader); cheap {
			full, err := h.Get(ctx, spec.Kind, spec.ID)
			if err != nil {
				return false, err
			}
			g = full
		}
		return !g.HasSnapshot(spec.Spec.TemplateSnapshotName), nil
	}
	return false, nil
}

type builder struct {
	cfg   *api.Config
	plan  *Plan
	index map[api.ID]int
}

func newBuilder(cfg *api.Config, verb string, targets []api.ID) *builder {
	return &builder{cfg: cfg, plan: &Plan{Verb: verb, Targets: targets}, index: map[api.ID]int{}}
}

func (b *builder) add(id api.ID, action, reason string) *Action {
	g := b.cfg.Guest(id)
	a := &Action{ID: id, Kind: g.Kind, Action: action, Reason: reason, Guest: g}
	b.index[id] = len(b.plan.Actions)
	b.plan.Actions = append(b.plan.Actions, a)
	return a
}

// link makes every action wait for the actions of the guests it needs.
func (b *builder) link(follow func(api.Edge) bool) {
	for _, a := range b.plan.Actions {
		for _, e := range b.cfg.Edges(a.Guest) {
			if follow != nil && !follow(e) {
				continue
			}
			if j, ok := b.index[e.To]; ok {
				a.Needs = append(a.Needs, j)
			}
		}
	}
}

func targetSet(targets []api.ID) map[api.ID]bool {
	m := make(map[api.ID]bool, len(targets))
	for _, t := range targets {
		m[t] = true
	}
	return m
}

// Create plans `create`: every named guest gets the full workflow;
// every other guest of the closure is created only when missing. A runtime
// dependency that exists but is stopped is started, since it must run
// before its dependent starts.
func Create(ctx context.Context, cfg *api.Config, targets []api.ID, look Lookup) (*Plan, error) {
	b := newBuilder(cfg, "create", targets)
	named := targetSet(targets)
	order := cfg.Closure(targets, nil)
	runtimeNeeded := map[api.ID]bool{}
	for _, id := range order {
		for _, e := range cfg.Edges(cfg.Guest(id)) {
			if e.Kind == api.RuntimeEdge {
				runtimeNeeded[e.To] = true
			}
		}
	}
	for _, id := range order {
		if named[id] {
			b.add(id, ActCreate, ReasonTarget)
			continue
		}
		st, err := look(ctx, cfg.Guest(id).Kind, id)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", id, err)
		}
		switch {
		case !st.Exists || st.Unfinished:
			b.add(id, ActCreate, ReasonMissingDependency)
		case runtimeNeeded[id] && !st.Running && !cfg.Guest(id).IsTemplateSource():
			b.add(id, ActStart, ReasonDependency)
		default:
			b.add(id, ActSkip, ReasonExists)
		}
	}
	b.link(nil)
	return b.plan, nil
}

// Converge plans `converge`: the full workflow on every guest of the
// closure.
func Converge(cfg *api.Config, targets []api.ID) *Plan {
	b := newBuilder(cfg, "converge", targets)
	named := targetSet(targets)
	for _, id := range cfg.Closure(targets, nil) {
		reason := ReasonConverge
		if named[id] {
			reason = ReasonTarget
		}
		b.add(id, ActCreate, reason)
	}
	b.link(nil)
	return b.plan
}

// Apply plans the full workflow on the given guests only, each waiting
// for the others it needs; the controller uses it for a changed spec.
func Apply(cfg *api.Config, ids []api.ID) *Plan {
	b := newBuilder(cfg, "apply", ids)
	for _, id := range ids {
		b.add(id, ActCreate, ReasonTarget)
	}
	b.link(nil)
	return b.plan
}

// Start plans `start`: the targets and their runtime dependencies,
// dependencies first; clone sources are not started.
func Start(ctx context.Context, cfg *api.Config, targets []api.ID, look Lookup) (*Plan, error) {
	b := newBuilder(cfg, "start", targets)
	named := targetSet(targets)
	for _, id := range cfg.Closure(targets, api.RuntimeOnly) {
		st, err := look(ctx, cfg.Guest(id).Kind, id)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", id, err)
		}
		reason := ReasonDependency
		if named[id] {
			reason = ReasonTarget
		}
		switch {
		case !st.Exists:
			return nil, &UsageError{Msg: fmt.Sprintf("cannot start %s: guest %s does not exist (run phoenix create %s)", targets, id, id)}
		case st.Running:
			b.add(id, ActSkip, ReasonRunning)
		default:
			b.add(id, ActStart, reason)
		}
	}
	b.link(api.RuntimeOnly)
	return b.plan, nil
}

// Stop plans `stop` or `restart` of the named guests only.
func Stop(ctx context.Context, cfg *api.Config, verb string, targets []api.ID, look Lookup) (*Plan, error) {
	b := newBuilder(cfg, verb, targets)
	for _, id := range targets {
		st, err := look(ctx, cfg.Guest(id).Kind, id)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", id, err)
		}
		switch {
		case !st.Exists:
			b.add(id, ActSkip, ReasonAbsent)
		case verb == ActStop && !st.Running:
			b.add(id, ActSkip, ReasonStopped)
		default:
			b.add(id, verb, ReasonTarget)
		}
	}
	return b.plan, nil
}

// UsageError is a refusal that the user must fix (exit 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// IsTerminal reports whether retrying cannot help: the desired state itself
// is wrong.
func IsTerminal(err error) bool {
	var inv *api.InvalidError
	var use *UsageError
	return errors.As(err, &inv) || errors.As(err, &use)
}

// Delete plans `delete` of the named guests only. It refuses when an
// existing guest outside the targets clones from or depends on one of them,
// unless force.
func Delete(ctx context.Context, cfg *api.Config, targets []api.ID, look Lookup, force bool) (*Plan, error) {
	b := newBuilder(cfg, "delete", targets)
	named := targetSet(targets)
	for _, id := range targets {
		st, err := look(ctx, cfg.Guest(id).Kind, id)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", id, err)
		}
		if !st.Exists {
			b.add(id, ActSkip, ReasonAbsent)
			continue
		}
		if !force {
			var users []string
			for _, d := range cfg.Dependents(id) {
				if named[d] {
					continue
				}
				dst, err := look(ctx, cfg.Guest(d).Kind, d)
				if err != nil {
					return nil, fmt.Errorf("look up %s: %w", d, err)
				}
				if dst.Exists {
					users = append(users, d.String())
				}
			}
			if len(users) > 0 {
				return nil, &UsageError{Msg: fmt.Sprintf("refusing to delete %s: existing guest(s) %s clone from or depend on it (use --force)", id, strings.Join(users, ", "))}
			}
		}
		b.add(id, ActDelete, ReasonTarget)
	}
	// Dependents go first: delete a clone before its source.
	for _, a := range b.plan.Actions {
		for _, d := range cfg.Dependents(a.ID) {
			if j, ok := b.index[d]; ok {
				a.Needs = append(a.Needs, j)
			}
		}
	}
	return b.plan, nil
}

// LetsGo plans `LetsGo`: the full workflow on every guest in
// topological order, then a start of every non-template guest whose
// start_at_boot is not false, in boot order (a guest without boot_order
// after every guest with one, as the old tool's 999), each boot order group
// after the one before. A guest never starts before the guests it depends
// on: one that depends on a guest of a later group starts with that group,
// and within a group dependencies start first.
func LetsGo(cfg *api.Config) *Plan {
	b := newBuilder(cfg, "LetsGo", nil)
	for _, id := range cfg.Order() {
		b.add(id, ActCreate, ReasonTarget)
	}
	b.link(nil)
	starting := map[api.ID]bool{}
	for _, id := range cfg.IDs {
		if g := cfg.Guest(id); !g.IsTemplateSource() && g.StartsAtBoot() {
			starting[id] = true
		}
	}
	// rank is the group a guest starts in, depth its place in the chain of
	// starting guests it depends on; cfg.Order() lists dependencies first.
	rank := make(map[api.ID]int, len(starting))
	depth := make(map[api.ID]int, len(starting))
	var boot []*api.Guest
	for _, id := range cfg.Order() {
		if !starting[id] {
			continue
		}
		g := cfg.Guest(id)
		rank[id] = g.BootRank()
		for _, e := range cfg.Edges(g) {
			if e.Kind == api.RuntimeEdge && starting[e.To] {
				rank[id] = max(rank[id], rank[e.To])
				depth[id] = max(depth[id], depth[e.To]+1)
			}
		}
		boot = append(boot, g)
	}
	sort.SliceStable(boot, func(i, j int) bool {
		a, c := boot[i].ID, boot[j].ID
		return cmp.Or(cmp.Compare(rank[a], rank[c]), cmp.Compare(depth[a], depth[c]), cmp.Compare(a, c)) < 0
	})
	// Each boot_order group starts after the one before. Rather than every
	// start of a group waiting for every start of the previous group (n²
	// edges at 10,000 guests), the first start of a group waits for the
	// whole previous group and the rest of the group wait for that first.
	// The first of a group has the least depth, so it needs no other start
	// of its group.
	var prevGroup, curGroup []int
	var gate int // the index of the group's first start, once haveGate
	haveGate := false
	startAt := make(map[api.ID]int, len(boot))
	for i, g := range boot {
		if i > 0 && rank[g.ID] != rank[boot[i-1].ID] {
			prevGroup, curGroup = curGroup, nil
			haveGate = false
		}
		a := &Action{ID: g.ID, Kind: g.Kind, Action: ActStart, Reason: ReasonTarget, Guest: g}
		a.Needs = []int{b.index[g.ID]}
		if !haveGate {
			a.Needs = append(a.Needs, prevGroup...)
			gate, haveGate = len(b.plan.Actions), true
		} else if prevGroup != nil {
			a.Needs = append(a.Needs, gate)
		}
		// A dependency of an earlier group is waited for through the
		// groups; one of this group directly.
		for _, e := range cfg.Edges(g) {
			if j, ok := startAt[e.To]; ok && e.Kind == api.RuntimeEdge && rank[e.To] == rank[g.ID] && j != gate && !slices.Contains(a.Needs, j) {
				a.Needs = append(a.Needs, j)
			}
		}
		startAt[g.ID] = len(b.plan.Actions)
		curGroup = append(curGroup, len(b.plan.Actions))
		b.plan.Actions = append(b.plan.Actions, a)
	}
	b.plan.Targets = cfg.IDs
	return b.plan
}
