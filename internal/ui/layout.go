package ui

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Sizes of the picture, in SVG user units. Text widths are estimated from
// character counts (there is no font to measure in Go), generously, so that
// labels fit in any sans-serif font.
const (
	nodeH     = 46
	minNodeW  = 150
	maxNodeW  = 280
	labelChar = 8 // per character of the 13px bold label
	subChar   = 7 // per character of the 11px subtitle
	nodePad   = 16
	vmPad     = 12 // a VM's rounded ends take room from its text
	layerGap  = 70
	nodeGap   = 28
	dummyGap  = 14
	margin    = 24
	portStep  = 14 // distance between edge ends sharing a side of a node
)

// Point is a position in the picture.
type Point struct{ X, Y int }

// Box is a guest placed in the picture: X and Y are its top-left corner.
type Box struct {
	Node
	X, Y, W, H int
	Layer      int
	// Label is the first line ("941 granite-vllm"), cut to fit the box.
	Label string
}

// Path is an edge drawn through Points: it leaves the bottom of the guest
// that is needed and enters the top of the guest that needs it, passing
// through one bend per layer it crosses.
type Path struct {
	Edge
	Points []Point
}

// Diagram is a laid-out graph.
type Diagram struct {
	Width, Height int
	Boxes         []Box
	Paths         []Path
}

// vertex is a node of the layered graph: a guest, or a dummy where a long
// edge crosses a layer.
type vertex struct {
	node     int // index in Graph.Nodes; -1 for a dummy
	layer    int
	w        int
	up, down []int // neighbours in the layer above and below
	pos      int   // index in its layer
	x        int   // centre
}

type layout struct {
	v      []vertex
	layers [][]int
}

// Layout places the graph's guests in layers, the guests a guest needs
// above it, and routes its edges. It is deterministic: the same graph gives
// the same diagram, its boxes in ID order.
func Layout(g *Graph) *Diagram {
	// Work on a sorted copy: the picture must not depend on the order the
	// caller listed guests and edges in.
	g = &Graph{Nodes: slices.Clone(g.Nodes), Edges: slices.Clone(g.Edges)}
	g.sort()
	l := &layout{}
	n := len(g.Nodes)
	index := make(map[api.ID]int, n)
	for i, nd := range g.Nodes {
		index[nd.ID] = i
		l.v = append(l.v, vertex{node: i, w: boxWidth(nd)})
	}
	type edgeRef struct {
		e        Edge
		from, to int
	}
	var edges []edgeRef
	preds := make([][]int, n)
	for _, e := range g.Edges {
		f, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if !ok1 || !ok2 || f == t {
			continue
		}
		edges = append(edges, edgeRef{e, f, t})
		preds[t] = append(preds[t], f)
	}
	l.assignLayers(preds)

	// Break every edge that spans layers into one segment per layer, so
	// that ordering and placement see it and route it around other boxes.
	chains := make([][]int, len(edges))
	for i, er := range edges {
		lf, lt := l.v[er.from].layer, l.v[er.to].layer
		chain := []int{er.from}
		if lf < lt {
			for layer := lf + 1; layer < lt; layer++ {
				l.v = append(l.v, vertex{node: -1, layer: layer})
				chain = append(chain, len(l.v)-1)
			}
			chain = append(chain, er.to)
			for k := 0; k+1 < len(chain); k++ {
				a, b := chain[k], chain[k+1]
				l.v[a].down = append(l.v[a].down, b)
				l.v[b].up = append(l.v[b].up, a)
			}
		} else {
			// Only a cycle gives an edge that does not point down; a
			// valid config has none. It is drawn but takes no part in
			// ordering.
			chain = append(chain, er.to)
		}
		chains[i] = chain
	}
	maxLayer := 0
	for _, v := range l.v {
		maxLayer = max(maxLayer, v.layer)
	}
	l.layers = make([][]int, maxLayer+1)
	for i := range l.v {
		l.layers[l.v[i].layer] = append(l.layers[l.v[i].layer], i)
	}
	l.renumber()
	l.order()
	l.place()

	d := &Diagram{}
	minX, maxX := 0, 0
	for i, v := range l.v {
		left, right := v.x-v.w/2, v.x+v.w-v.w/2
		if i == 0 || left < minX {
			minX = left
		}
		if i == 0 || right > maxX {
			maxX = right
		}
	}
	shift := margin - minX
	for i := range l.v {
		l.v[i].x += shift
	}
	d.Width = maxX - minX + 2*margin
	d.Height = 2*margin + (maxLayer+1)*nodeH + maxLayer*layerGap
	for i, nd := range g.Nodes {
		v := l.v[i]
		d.Boxes = append(d.Boxes, Box{Node: nd, X: v.x - v.w/2, Y: layerTop(v.layer), W: v.w, H: nodeH, Layer: v.layer, Label: boxLabel(nd)})
	}
	out, in := l.ports(chains)
	for i, er := range edges {
		chain := chains[i]
		p := Path{Edge: er.e}
		p.Points = append(p.Points, Point{out[[2]int{chain[0], chain[1]}], layerTop(l.v[chain[0]].layer) + nodeH})
		for _, dv := range chain[1 : len(chain)-1] {
			v := l.v[dv]
			p.Points = append(p.Points, Point{v.x, layerTop(v.layer)}, Point{v.x, layerTop(v.layer) + nodeH})
		}
		last := chain[len(chain)-1]
		p.Points = append(p.Points, Point{in[[2]int{chain[len(chain)-2], last}], layerTop(l.v[last].layer)})
		d.Paths = append(d.Paths, p)
	}
	return d
}

func layerTop(layer int) int { return margin + layer*(nodeH+layerGap) }

// assignLayers puts every guest one layer below the lowest guest it needs
// (longest path from the roots), so that each guest sits above all it
// enables and chains read top-down.
func (l *layout) assignLayers(preds [][]int) {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int8, len(preds))
	var visit func(v int) int
	visit = func(v int) int {
		switch state[v] {
		case done:
			return l.v[v].layer
		case visiting:
			return -1 // a cycle: ignore the edge that closes it
		}
		state[v] = visiting
		layer := 0
		for _, p := range preds[v] {
			if lp := visit(p); lp >= 0 && lp+1 > layer {
				layer = lp + 1
			}
		}
		state[v] = done
		l.v[v].layer = layer
		return layer
	}
	for v := range preds {
		visit(v)
	}
}

func (l *layout) renumber() {
	for _, layer := range l.layers {
		for i, v := range layer {
			l.v[v].pos = i
		}
	}
}

// order reduces edge crossings: barycenter sweeps down and up, keeping the
// best order seen, then swaps of neighbours while a swap removes crossings.
func (l *layout) order() {
	best := l.snapshot()
	bestC := l.crossings()
	stale := 0
	for it := 0; it < 32 && bestC > 0 && stale < 8; it++ {
		if it%2 == 0 {
			for i := 1; i < len(l.layers); i++ {
				l.sortLayer(i, true)
			}
		} else {
			for i := len(l.layers) - 2; i >= 0; i-- {
				l.sortLayer(i, false)
			}
		}
		if c := l.crossings(); c < bestC {
			best, bestC, stale = l.snapshot(), c, 0
		} else {
			stale++
		}
	}
	l.restore(best)
	if len(l.v) <= 4000 {
		l.transpose()
	}
}

func (l *layout) snapshot() [][]int {
	out := make([][]int, len(l.layers))
	for i, layer := range l.layers {
		out[i] = append([]int(nil), layer...)
	}
	return out
}

func (l *layout) restore(s [][]int) {
	l.layers = s
	l.renumber()
}

// sortLayer orders a layer by the mean position of each vertex's neighbours
// in the layer above (up) or below. Vertices without such neighbours keep
// their slots; ties keep their current order.
func (l *layout) sortLayer(i int, up bool) {
	layer := l.layers[i]
	type keyed struct{ v, key, pos int }
	var movable []keyed
	fixed := make([]bool, len(layer))
	for k, v := range layer {
		nb := l.v[v].down
		if up {
			nb = l.v[v].up
		}
		if len(nb) == 0 {
			fixed[k] = true
			continue
		}
		sum := 0
		for _, u := range nb {
			sum += l.v[u].pos
		}
		movable = append(movable, keyed{v, sum * 1024 / len(nb), k})
	}
	sort.SliceStable(movable, func(a, b int) bool {
		if movable[a].key != movable[b].key {
			return movable[a].key < movable[b].key
		}
		return movable[a].pos < movable[b].pos
	})
	next := 0
	out := make([]int, len(layer))
	for k := range layer {
		if fixed[k] {
			out[k] = layer[k]
			continue
		}
		out[k] = movable[next].v
		next++
	}
	l.layers[i] = out
	for k, v := range out {
		l.v[v].pos = k
	}
}

// crossings counts the edge crossings of the whole layering.
func (l *layout) crossings() int {
	total := 0
	for i := 0; i+1 < len(l.layers); i++ {
		total += l.crossingsBetween(i)
	}
	return total
}

// crossingsBetween counts crossings between layer i and i+1: the number of
// inversions in the lower ends of the segments taken in upper-end order,
// counted with a Fenwick tree.
func (l *layout) crossingsBetween(i int) int {
	var seq []int
	for _, v := range l.layers[i] {
		lows := make([]int, 0, len(l.v[v].down))
		for _, u := range l.v[v].down {
			lows = append(lows, l.v[u].pos)
		}
		sort.Ints(lows)
		seq = append(seq, lows...)
	}
	size := len(l.layers[i+1])
	tree := make([]int, size+1)
	count := 0
	for k, p := range seq {
		// Segments already seen whose lower end lies right of p cross it.
		seenUpTo := 0
		for j := p + 1; j > 0; j -= j & -j {
			seenUpTo += tree[j]
		}
		count += k - seenUpTo
		for j := p + 1; j <= size; j += j & -j {
			tree[j]++
		}
	}
	return count
}

// transpose swaps neighbours in a layer while that removes crossings.
func (l *layout) transpose() {
	for round := 0; round < 16; round++ {
		improved := false
		for i, layer := range l.layers {
			for k := 0; k+1 < len(layer); k++ {
				a, b := layer[k], layer[k+1]
				if l.pairCrossings(b, a) < l.pairCrossings(a, b) {
					layer[k], layer[k+1] = b, a
					l.v[a].pos, l.v[b].pos = k+1, k
					improved = true
				}
			}
			l.layers[i] = layer
		}
		if !improved {
			return
		}
	}
}

// pairCrossings counts the crossings between the edges of a and b when a is
// left of b.
func (l *layout) pairCrossings(a, b int) int {
	c := 0
	for _, nb := range [2]func(int) []int{func(v int) []int { return l.v[v].up }, func(v int) []int { return l.v[v].down }} {
		for _, x := range nb(a) {
			for _, y := range nb(b) {
				if l.v[x].pos > l.v[y].pos {
					c++
				}
			}
		}
	}
	return c
}

// place gives every vertex its x. Each layer in turn is pulled toward its
// neighbours in the layer just placed, as close as the boxes' order and
// spacing allow: a least-squares fit under "stay in order, do not overlap",
// which pool-adjacent-violators solves exactly. Long edges weigh most, so
// that they run straight.
func (l *layout) place() {
	for _, layer := range l.layers {
		x := 0
		for k, v := range layer {
			if k > 0 {
				x += l.sep(layer[k-1], v)
			}
			l.v[v].x = x
		}
		for _, v := range layer {
			l.v[v].x -= x / 2
		}
	}
	for it := 0; it < 16; it++ {
		if it%2 == 0 {
			for i := 1; i < len(l.layers); i++ {
				l.fit(i, func(v int) []int { return l.v[v].up })
			}
		} else {
			for i := len(l.layers) - 2; i >= 0; i-- {
				l.fit(i, func(v int) []int { return l.v[v].down })
			}
		}
	}
	// A last pass on both sides settles each guest between what it needs
	// and what needs it.
	for i := range l.layers {
		l.fit(i, func(v int) []int { return append(append([]int(nil), l.v[v].up...), l.v[v].down...) })
	}
}

func (l *layout) sep(a, b int) int {
	gap := nodeGap
	if l.v[a].node < 0 || l.v[b].node < 0 {
		gap = dummyGap
	}
	return l.v[a].w - l.v[a].w/2 + l.v[b].w/2 + gap
}

func (l *layout) fit(i int, nb func(int) []int) {
	layer := l.layers[i]
	if len(layer) == 0 {
		return
	}
	target := make([]int, len(layer))
	weight := make([]int, len(layer))
	offset := 0
	for k, v := range layer {
		if k > 0 {
			offset += l.sep(layer[k-1], v)
		}
		want, w := l.v[v].x, 1
		if ns := nb(v); len(ns) > 0 {
			sum := 0
			for _, u := range ns {
				sum += l.v[u].x
			}
			want = floorDiv(sum, len(ns))
			w = 4
			if l.v[v].node < 0 {
				w = 16
			}
		}
		target[k], weight[k] = want-offset, w
	}
	y := isotonic(target, weight)
	offset = 0
	for k, v := range layer {
		if k > 0 {
			offset += l.sep(layer[k-1], v)
		}
		l.v[v].x = y[k] + offset
	}
}

// isotonic returns the non-decreasing sequence closest to t in weighted
// least squares (pool adjacent violators), in integers.
func isotonic(t, w []int) []int {
	type block struct{ sum, wsum, n int }
	blocks := make([]block, 0, len(t))
	for i := range t {
		blocks = append(blocks, block{t[i] * w[i], w[i], 1})
		for len(blocks) > 1 {
			a, b := blocks[len(blocks)-2], blocks[len(blocks)-1]
			if a.sum*b.wsum <= b.sum*a.wsum {
				break
			}
			blocks = blocks[:len(blocks)-2]
			blocks = append(blocks, block{a.sum + b.sum, a.wsum + b.wsum, a.n + b.n})
		}
	}
	out := make([]int, 0, len(t))
	for _, b := range blocks {
		m := floorDiv(b.sum, b.wsum)
		for range b.n {
			out = append(out, m)
		}
	}
	return out
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// ports spreads the ends of the edges that share a side of a guest, in the
// order of where they go, so that arrowheads do not pile up on one point.
// It returns the x of each segment's upper end and of its lower end.
func (l *layout) ports(chains [][]int) (out, in map[[2]int]int) {
	out, in = map[[2]int]int{}, map[[2]int]int{}
	downs := map[int][]int{}
	ups := map[int][]int{}
	for _, c := range chains {
		a, b, y, z := c[0], c[1], c[len(c)-2], c[len(c)-1]
		downs[a] = append(downs[a], b)
		ups[z] = append(ups[z], y)
	}
	spread := func(v int, others []int, into map[[2]int]int, key func(o int) [2]int) {
		sort.SliceStable(others, func(i, j int) bool { return l.v[others[i]].x < l.v[others[j]].x })
		k := len(others)
		span := min((k-1)*portStep, l.v[v].w/2)
		for i, o := range others {
			x := l.v[v].x
			if k > 1 {
				x = l.v[v].x - span/2 + i*span/(k-1)
			}
			into[key(o)] = x
		}
	}
	for v := range l.v {
		if ds, ok := downs[v]; ok {
			spread(v, ds, out, func(o int) [2]int { return [2]int{v, o} })
		}
		if us, ok := ups[v]; ok {
			spread(v, us, in, func(o int) [2]int { return [2]int{o, v} })
		}
	}
	return out, in
}

// kindText is how a node names its kind.
func kindText(k api.Kind) string { return strings.ToUpper(string(k)) }

// subtitle is a node's second line: kind, template, phase. Colour is not
// the only sign of the phase.
func subtitle(n Node) string {
	s := kindText(n.Kind)
	if n.Template {
		s += " · template"
	}
	return s + " · " + string(n.Phase)
}

func fullLabel(n Node) string {
	if n.Name == "" {
		return n.ID.String()
	}
	return fmt.Sprintf("%s %s", n.ID, n.Name)
}

// boxWidth fits the label and the widest subtitle any phase gives, so that
// a phase change never moves anything.
func boxWidth(n Node) int {
	pad := 2 * nodePad
	if n.Kind == api.KindVM {
		pad += 2 * vmPad
	}
	widest := n
	widest.Phase = api.PhaseProvisioning
	w := max(utf8.RuneCountInString(fullLabel(n))*labelChar, utf8.RuneCountInString(subtitle(widest))*subChar) + pad
	return min(max(w, minNodeW), maxNodeW)
}

// boxLabel cuts the label to fit its box; the full text is in the node's
// tooltip and the page's table.
func boxLabel(n Node) string {
	label := fullLabel(n)
	pad := 2 * nodePad
	if n.Kind == api.KindVM {
		pad += 2 * vmPad
	}
	room := (maxNodeW - pad) / labelChar
	if r := []rune(label); len(r) > room {
		return string(r[:room-1]) + "…"
	}
	return label
}
