package api

import (
	"reflect"
	"testing"
)

// graph builds a config from "guest: clone source, dependencies..." rows;
// a clone source of 0 means none. Guests above 8000 are VMs.
func graph(rows map[ID][]ID) *Config {
	c := &Config{Guests: map[ID]*Guest{}}
	for id, r := range rows {
		g := &Guest{ID: id, Kind: KindLXC}
		if id >= 8000 {
			g.Kind = KindVM
		}
		if len(r) > 0 && r[0] != 0 {
			if g.Kind == KindVM {
				g.Spec.CloneFromVMID = &Ref{ID: r[0]}
			} else {
				g.Spec.CloneFromCTID = &Ref{ID: r[0]}
			}
		}
		for _, d := range r[min(1, len(r)):] {
			g.Spec.Dependencies = append(g.Spec.Dependencies, Ref{ID: d})
		}
		c.Guests[id] = g
		c.IDs = append(c.IDs, id)
	}
	sortIDs(c.IDs)
	return c
}

func sortIDs(ids []ID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

// lab is the reference chain: 900 <- 901 <- 921 <- 941, 941 also needs
// 953 (itself a clone of 900); 8001 clones 8000 and needs 941.
func lab() *Config {
	return graph(map[ID][]ID{
		900: nil, 901: {900}, 921: {901}, 953: {900}, 941: {921, 953},
		8000: nil, 8001: {8000, 941}, 960: {0, 953, 900},
	})
}

func TestEdges_cloneSourceFirstThenDependencies(t *testing.T) {
	c := lab()
	tests := []struct {
		id   ID
		want []Edge
	}{
		{900, nil},
		{941, []Edge{{921, BuildEdge}, {953, RuntimeEdge}}},
		{8001, []Edge{{8000, BuildEdge}, {941, RuntimeEdge}}},
		{960, []Edge{{953, RuntimeEdge}, {900, RuntimeEdge}}},
	}
	for _, tt := range tests {
		if got := c.Edges(c.Guest(tt.id)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Edges(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestClosure(t *testing.T) {
	c := lab()
	tests := []struct {
		name    string
		targets []ID
		follow  func(Edge) bool
		want    []ID
	}{
		{"leaf", []ID{900}, nil, []ID{900}},
		{"chain", []ID{941}, nil, []ID{900, 901, 921, 953, 941}},
		{"shared dependency once", []ID{941, 953}, nil, []ID{900, 901, 921, 953, 941}},
		{"targets in the order given", []ID{953, 901}, nil, []ID{900, 953, 901}},
		{"across kinds", []ID{8001}, nil, []ID{8000, 900, 901, 921, 953, 941, 8001}},
		{"runtime only", []ID{941}, RuntimeOnly, []ID{953, 941}},
		{"runtime only, no clone source", []ID{8001}, RuntimeOnly, []ID{953, 941, 8001}},
		{"unknown target", []ID{555}, nil, nil},
	}
	for _, tt := range tests {
		if got := c.Closure(tt.targets, tt.follow); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Closure(%v) = %v, want %v", tt.name, tt.targets, got, tt.want)
		}
	}
}

func TestOrder_everyGuestAfterWhatItNeeds(t *testing.T) {
	c := lab()
	order := c.Order()
	if len(order) != len(c.IDs) {
		t.Fatalf("Order() = %v, want all %d guests", order, len(c.IDs))
	}
	pos := map[ID]int{}
	for i, id := range order {
		pos[id] = i
	}
	for _, id := range c.IDs {
		for _, e := range c.Edges(c.Guest(id)) {
			if pos[e.To] > pos[id] {
				t.Errorf("%s comes before %s, which it needs: %v", id, e.To, order)
			}
		}
	}
}

func TestDependents(t *testing.T) {
	c := lab()
	tests := []struct {
		id   ID
		want []ID
	}{
		{900, []ID{901, 953, 960}},
		{953, []ID{941, 960}},
		{941, []ID{8001}},
		{8001, nil},
	}
	for _, tt := range tests {
		if got := c.Dependents(tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Dependents(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name string
		rows map[ID][]ID
		want [][]ID
	}{
		{"none", map[ID][]ID{900: nil, 901: {900}, 902: {901, 900}}, nil},
		{"self", map[ID][]ID{900: {0, 900}}, [][]ID{{900, 900}}},
		{"two", map[ID][]ID{900: {0, 901}, 901: {0, 900}}, [][]ID{{900, 901, 900}}},
		{"clone loop of three", map[ID][]ID{900: {902}, 901: {900}, 902: {901}}, [][]ID{{900, 902, 901, 900}}},
		{"tail into a loop", map[ID][]ID{900: {0, 901}, 901: {0, 902}, 902: {0, 901}}, [][]ID{{901, 902, 901}}},
		{"unknown reference ignored", map[ID][]ID{900: {0, 555}}, nil},
		{"two loops", map[ID][]ID{900: {0, 901}, 901: {0, 900}, 910: {0, 911}, 911: {0, 910}},
			[][]ID{{900, 901, 900}, {910, 911, 910}}},
	}
	for _, tt := range tests {
		if got := graph(tt.rows).Cycles(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Cycles() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
