package api

// EdgeKind tells why one guest needs another.
type EdgeKind int

const (
	// BuildEdge: the guest is cloned from the other (clone_from_ctid/vmid).
	BuildEdge EdgeKind = iota
	// RuntimeEdge: the other must exist and run before the guest starts.
	RuntimeEdge
)

// Edge points from a guest to a guest it needs.
type Edge struct {
	To   ID
	Kind EdgeKind
}

// Edges lists what g needs, clone source first, then dependencies in the
// order declared: the order the old tool visited them in.
func (c *Config) Edges(g *Guest) []Edge {
	var out []Edge
	if src := g.CloneSource(); src != 0 {
		out = append(out, Edge{To: src, Kind: BuildEdge})
	}
	for _, d := range g.Spec.Dependencies {
		out = append(out, Edge{To: d.ID, Kind: RuntimeEdge})
	}
	return out
}

// Closure returns targets and everything they need over edges that follow
// accepts, in depth-first post-order from the targets in the order given:
// every guest comes after the guests it needs. follow nil means every edge.
// The config must be valid (no cycles, no unknown targets).
func (c *Config) Closure(targets []ID, follow func(Edge) bool) []ID {
	seen := make(map[ID]bool, len(targets))
	var out []ID
	var visit func(id ID)
	visit = func(id ID) {
		if seen[id] {
			return
		}
		seen[id] = true
		g := c.Guests[id]
		if g == nil {
			return
		}
		for _, e := range c.Edges(g) {
			if follow == nil || follow(e) {
				visit(e.To)
			}
		}
		out = append(out, id)
	}
	for _, t := range targets {
		visit(t)
	}
	return out
}

// RuntimeOnly follows dependencies but not clone sources.
func RuntimeOnly(e Edge) bool { return e.Kind == RuntimeEdge }

// Order returns every guest in the default topological order.
func (c *Config) Order() []ID { return c.Closure(c.IDs, nil) }

// Dependents lists the guests that clone from or depend on id, ascending.
func (c *Config) Dependents(id ID) []ID {
	var out []ID
	for _, gid := range c.IDs {
		for _, e := range c.Edges(c.Guests[gid]) {
			if e.To == id {
				out = append(out, gid)
				break
			}
		}
	}
	return out
}

// cycles finds the cycles of the graph, each as a path that starts and ends
// on the same guest (900 -> 901 -> 900), and the guest whose edge closes it.
func (c *Config) Cycles() [][]ID {
	const (
		white = iota
		grey
		black
	)
	color := make(map[ID]int, len(c.Guests))
	var stack []ID
	var found [][]ID
	var visit func(id ID)
	visit = func(id ID) {
		color[id] = grey
		stack = append(stack, id)
		for _, e := range c.Edges(c.Guests[id]) {
			if c.Guests[e.To] == nil {
				continue
			}
			switch color[e.To] {
			case white:
				visit(e.To)
			case grey:
				start := len(stack) - 1
				for stack[start] != e.To {
					start--
				}
				cyc := append([]ID{}, stack[start:]...)
				found = append(found, append(cyc, e.To))
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
	}
	for _, id := range c.IDs {
		if color[id] == white {
			visit(id)
		}
	}
	return found
}
