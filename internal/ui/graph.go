package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Graph is what the picture shows: guests and what each needs.
type Graph struct {
	Nodes []Node
	Edges []Edge
}

// Node is one guest of the picture.
type Node struct {
	ID   api.ID
	Name string
	Kind api.Kind
	// Template marks a guest that exists to be cloned (a VM template or a
	// container with a template snapshot).
	Template bool
	Phase    api.Phase
}

// Edge points from a guest to one that needs it: a clone source to its
// clone (build), a dependency to its dependent (runtime). Drawn that way the
// picture reads top-down in the order things are built and started.
type Edge struct {
	From, To api.ID
	Kind     api.EdgeKind
}

// NewGraph builds the graph of the given guests of cfg (all of them when ids
// is empty), every guest Pending. Edges to guests outside ids are left out.
func NewGraph(cfg *api.Config, ids []api.ID) *Graph {
	if len(ids) == 0 {
		ids = cfg.IDs
	}
	in := make(map[api.ID]bool, len(ids))
	g := &Graph{}
	for _, id := range ids {
		gu := cfg.Guest(id)
		if gu == nil || in[id] {
			continue
		}
		in[id] = true
		g.Nodes = append(g.Nodes, Node{ID: id, Name: gu.Spec.Name, Kind: gu.Kind, Template: gu.IsTemplateSource(), Phase: api.PhasePending})
	}
	for _, n := range g.Nodes {
		for _, e := range cfg.Edges(cfg.Guest(n.ID)) {
			if in[e.To] {
				g.Edges = append(g.Edges, Edge{From: e.To, To: n.ID, Kind: e.Kind})
			}
		}
	}
	g.sort()
	return g
}

// SetPhases sets each node's phase from phase; a node it has no answer for
// ("") keeps its phase.
func (g *Graph) SetPhases(phase func(id api.ID, kind api.Kind) api.Phase) {
	for i := range g.Nodes {
		if p := phase(g.Nodes[i].ID, g.Nodes[i].Kind); p != "" {
			g.Nodes[i].Phase = p
		}
	}
}

// AddOrphan adds a guest phoenix recorded that is no longer in the files.
func (g *Graph) AddOrphan(id api.ID, kind api.Kind) {
	for _, n := range g.Nodes {
		if n.ID == id {
			return
		}
	}
	g.Nodes = append(g.Nodes, Node{ID: id, Kind: kind, Phase: api.PhaseOrphaned})
	g.sort()
}

// sort puts nodes and edges in a canonical order, so that the layout (and
// so the SVG) does not depend on the order they were added in.
func (g *Graph) sort() {
	sort.SliceStable(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.SliceStable(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.To != b.To {
			return a.To < b.To
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.From < b.From
	})
}

// Shape identifies the graph's structure without its phases: what the page
// compares to know that it must fetch the picture again rather than recolour
// the nodes it has.
func (g *Graph) Shape() string {
	h := sha256.New()
	for _, n := range g.Nodes {
		fmt.Fprintf(h, "n %d %q %s %t\n", n.ID, n.Name, n.Kind, n.Template)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(h, "e %d %d %d\n", e.From, e.To, e.Kind)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
