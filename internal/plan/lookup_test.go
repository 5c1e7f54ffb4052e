package plan

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// finishedHost answers Get for every guest of cfg as a finished create
// would have left it (templates converted, clone sources snapshotted),
// except what tweak changes. Nothing else of the Host is called.
type finishedHost struct {
	hypervisor.Host
	guests map[api.ID]*hypervisor.Guest
}

func newFinishedHost(cfg *api.Config, tweak func(*hypervisor.Guest)) *finishedHost {
	h := &finishedHost{guests: map[api.ID]*hypervisor.Guest{}}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		hg := &hypervisor.Guest{ID: id, Kind: g.Kind, Running: !g.IsTemplateSource(), Template: g.Spec.IsTemplate}
		if s := g.Spec.TemplateSnapshotName; s != "" {
			hg.Snapshots = []string{s}
		}
		if tweak != nil {
			tweak(hg)
		}
		h.guests[id] = hg
	}
	return h
}

func (h *finishedHost) Get(_ context.Context, _ api.Kind, id api.ID) (*hypervisor.Guest, error) {
	if g, ok := h.guests[id]; ok {
		return g, nil
	}
	return nil, hypervisor.ErrNotFound
}

// phases is a StatusReader with one recorded phase per guest; a guest
// without one has no status file.
type phases map[api.ID]api.Phase

func (p phases) Get(id api.ID, kind api.Kind) (*api.Status, error) {
	ph, ok := p[id]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return &api.Status{ID: id.String(), Kind: kind, Phase: ph}, nil
}

// TestPlanCreate_finishesUnfinishedDependency: create 941 on a host where
// its whole chain exists. A dependency whose last workflow failed or was
// interrupted (recorded Failed or Provisioning), or that the host shows
// half made (no template snapshot), gets the create workflow again; a
// finished one is skipped.
func TestPlanCreate_finishesUnfinishedDependency(t *testing.T) {
	ref := load(t, referenceLab)
	noSnapshot := func(id api.ID) func(*hypervisor.Guest) {
		return func(g *hypervisor.Guest) {
			if g.ID == id {
				g.Snapshots = nil
			}
		}
	}
	tests := []struct {
		name   string
		tweak  func(*hypervisor.Guest)
		status StatusReader
		want   string // 921's line in the plan
	}{
		{"finished, no status", nil, nil, "skip    921       lxc exists"},
		{"recorded Ready", nil, phases{921: api.PhaseReady}, "skip    921       lxc exists"},
		{"recorded Pending", nil, phases{921: api.PhasePending}, "skip    921       lxc exists"},
		{"no status file", nil, phases{}, "skip    921       lxc exists"},
		{"recorded Failed", nil, phases{921: api.PhaseFailed}, "create  921       lxc missing-dependency"},
		{"recorded Provisioning", nil, phases{921: api.PhaseProvisioning}, "create  921       lxc missing-dependency"},
		{"template snapshot missing", noSnapshot(921), nil, "create  921       lxc missing-dependency"},
		{"other guest's snapshot missing", noSnapshot(953), phases{921: api.PhaseReady}, "skip    921       lxc exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFinishedHost(ref, tt.tweak)
			p, err := Create(context.Background(), ref, []api.ID{941}, HostLookup(h, ref, tt.status))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.String(), tt.want) {
				t.Errorf("want %q in the plan:\n%s", tt.want, p)
			}
			// 900, upstream of 921 and finished, is never redone.
			if !strings.Contains(p.String(), "skip    900       lxc exists") {
				t.Errorf("900 is finished and must be skipped:\n%s", p)
			}
		})
	}
}

// TestPlanCreate_unconvertedTemplateIsFinished: a guest meant to be a
// template that the host shows as a plain guest is created again.
func TestPlanCreate_unconvertedTemplateIsFinished(t *testing.T) {
	ex := load(t, exampleLab)
	var tmpl, dependent api.ID
	for _, id := range ex.IDs {
		if ex.Guest(id).Spec.IsTemplate {
			tmpl = id
			break
		}
	}
	if tmpl == 0 {
		t.Fatalf("%s has no is_template guest", exampleLab)
	}
	for _, id := range ex.IDs {
		for _, e := range ex.Edges(ex.Guest(id)) {
			if e.To == tmpl && !ex.Guest(id).Spec.IsTemplate {
				dependent = id
			}
		}
	}
	if dependent == 0 {
		t.Fatalf("nothing in %s depends on template %s", exampleLab, tmpl)
	}
	for _, converted := range []bool{true, false} {
		h := newFinishedHost(ex, func(g *hypervisor.Guest) {
			if g.ID == tmpl {
				g.Template = converted
			}
		})
		p, err := Create(context.Background(), ex, []api.ID{dependent}, HostLookup(h, ex, nil))
		if err != nil {
			t.Fatal(err)
		}
		a := p.Actions[indexOf(t, p, tmpl)]
		if want := map[bool]string{true: ActSkip, false: ActCreate}[converted]; a.Action != want {
			t.Errorf("template %s converted=%v: action %s, want %s\n%s", tmpl, converted, a.Action, want, p)
		}
	}
}

// TestHostLookup_errorsStopPlanning: a host that cannot answer stops
// planning with the guest named, rather than guessing.
func TestHostLookup_errorsStopPlanning(t *testing.T) {
	ref := load(t, referenceLab)
	h := &erringHost{}
	_, err := Create(context.Background(), ref, []api.ID{941}, HostLookup(h, ref, nil))
	if err == nil || !strings.Contains(err.Error(), "look up 900") || !strings.Contains(err.Error(), "pct status timed out") {
		t.Fatalf("Create = %v, want the lookup error naming 900", err)
	}
}

type erringHost struct{ hypervisor.Host }

func (erringHost) Get(context.Context, api.Kind, api.ID) (*hypervisor.Guest, error) {
	return nil, errors.New("pct status timed out")
}

func indexOf(t *testing.T, p *Plan, id api.ID) int {
	t.Helper()
	for i, a := range p.Actions {
		if a.ID == id {
			return i
		}
	}
	t.Fatalf("%s not in the plan:\n%s", id, p)
	return -1
}
