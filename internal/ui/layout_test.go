package ui_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ and docs/img/status-page.png")

const (
	exampleLab   = "../../config/examples/lab"
	referenceLab = "../../testdata/reference-lab"
)

func loadLab(tb testing.TB, dir string) *api.Config {
	tb.Helper()
	cfg, err := desired.Load(dir)
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	return cfg
}

func assertGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (go test ./ui -run %s -update writes it)", err, tb.Name())
	}
	if !bytes.Equal(want, got) {
		tb.Errorf("%s differs from the output (go test ./ui -run %s -update rewrites it after a deliberate change)", path, tb.Name())
	}
}

// wellFormed parses an SVG document as XML.
func wellFormed(tb testing.TB, svg []byte) {
	tb.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
}

func g(nodes []ui.Node, edges ...ui.Edge) *ui.Graph { return &ui.Graph{Nodes: nodes, Edges: edges} }

func lxc(ids ...api.ID) []ui.Node {
	var out []ui.Node
	for _, id := range ids {
		out = append(out, ui.Node{ID: id, Name: "n" + id.String(), Kind: api.KindLXC, Phase: api.PhasePending})
	}
	return out
}

func build(from, to api.ID) ui.Edge   { return ui.Edge{From: from, To: to, Kind: api.BuildEdge} }
func runtime(from, to api.ID) ui.Edge { return ui.Edge{From: from, To: to, Kind: api.RuntimeEdge} }

func boxes(d *ui.Diagram) map[api.ID]ui.Box {
	out := map[api.ID]ui.Box{}
	for _, b := range d.Boxes {
		out[b.ID] = b
	}
	return out
}

// checkGeometry checks what every layout must give: boxes of one layer do
// not overlap, every edge runs downward from its source's bottom to its
// target's top, and everything is inside the picture.
func checkGeometry(tb testing.TB, d *ui.Diagram) {
	tb.Helper()
	byLayer := map[int][]ui.Box{}
	for _, b := range d.Boxes {
		if b.X < 0 || b.Y < 0 || b.X+b.W > d.Width || b.Y+b.H > d.Height {
			tb.Errorf("box %s at (%d,%d %dx%d) outside the %dx%d picture", b.ID, b.X, b.Y, b.W, b.H, d.Width, d.Height)
		}
		byLayer[b.Layer] = append(byLayer[b.Layer], b)
	}
	for layer, bs := range byLayer {
		for i := range bs {
			for j := i + 1; j < len(bs); j++ {
				a, b := bs[i], bs[j]
				if a.X < b.X+b.W && b.X < a.X+a.W {
					tb.Errorf("layer %d: boxes %s and %s overlap", layer, a.ID, b.ID)
				}
			}
		}
	}
	at := boxes(d)
	for _, p := range d.Paths {
		from, to := at[p.From], at[p.To]
		first, last := p.Points[0], p.Points[len(p.Points)-1]
		if first.Y != from.Y+from.H || last.Y != to.Y {
			tb.Errorf("edge %s->%s runs from y=%d to y=%d, want %d to %d", p.From, p.To, first.Y, last.Y, from.Y+from.H, to.Y)
		}
		if first.X < from.X || first.X > from.X+from.W || last.X < to.X || last.X > to.X+to.W {
			tb.Errorf("edge %s->%s does not start and end on its boxes", p.From, p.To)
		}
		for i := 1; i < len(p.Points); i++ {
			if p.Points[i].Y < p.Points[i-1].Y {
				tb.Errorf("edge %s->%s goes up at point %d", p.From, p.To, i)
			}
		}
	}
}

func TestLayout_layersByLongestPath(t *testing.T) {
	tests := []struct {
		name  string
		graph *ui.Graph
		want  map[api.ID]int
	}{
		{"chain", g(lxc(100, 101, 102), build(100, 101), build(101, 102)), map[api.ID]int{100: 0, 101: 1, 102: 2}},
		{"shortcut goes below the longest path", g(lxc(100, 101, 102), build(100, 101), build(101, 102), runtime(100, 102)),
			map[api.ID]int{100: 0, 101: 1, 102: 2}},
		{"two roots", g(lxc(100, 200, 300), build(100, 300), runtime(200, 300)), map[api.ID]int{100: 0, 200: 0, 300: 1}},
		{"isolated guest", g(lxc(100, 101)), map[api.ID]int{100: 0, 101: 0}},
		{"a cycle does not hang", g(lxc(100, 101), build(100, 101), build(101, 100)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ui.Layout(tt.graph)
			if len(d.Boxes) != len(tt.graph.Nodes) {
				t.Fatalf("%d boxes for %d guests", len(d.Boxes), len(tt.graph.Nodes))
			}
			for id, want := range tt.want {
				if got := boxes(d)[id].Layer; got != want {
					t.Errorf("guest %s in layer %d, want %d", id, got, want)
				}
			}
		})
	}
}

func TestLayout_barycenterRemovesCrossings(t *testing.T) {
	// In ID order 102 sits left of 103, but 102's parent 101 is right of
	// 103's parent 100: ordering must swap them.
	d := ui.Layout(g(lxc(100, 101, 102, 103), build(101, 102), build(100, 103)))
	b := boxes(d)
	if b[103].X >= b[102].X {
		t.Errorf("103 (child of 100) at x=%d, 102 (child of 101) at x=%d: edges cross", b[103].X, b[102].X)
	}
	checkGeometry(t, d)
}

func TestLayout_longEdgesBendAroundBoxes(t *testing.T) {
	// 100 -> 103 spans three layers: it gets a bend in each layer between.
	d := ui.Layout(g(lxc(100, 101, 102, 103), build(100, 101), build(101, 102), build(102, 103), runtime(100, 103)))
	for _, p := range d.Paths {
		if p.From == 100 && p.To == 103 {
			if len(p.Points) != 2+2*2 {
				t.Errorf("long edge has %d points, want 6 (two bends of two points)", len(p.Points))
			}
		}
	}
	checkGeometry(t, d)
}

func TestLayout_deterministicWhateverTheInputOrder(t *testing.T) {
	cfg := loadLab(t, exampleLab)
	want := ui.Layout(ui.NewGraph(cfg, nil))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		gr := ui.NewGraph(cfg, nil)
		rng.Shuffle(len(gr.Nodes), func(i, j int) { gr.Nodes[i], gr.Nodes[j] = gr.Nodes[j], gr.Nodes[i] })
		rng.Shuffle(len(gr.Edges), func(i, j int) { gr.Edges[i], gr.Edges[j] = gr.Edges[j], gr.Edges[i] })
		if got := ui.Layout(gr); !reflect.DeepEqual(got, want) {
			t.Fatal("a shuffled graph gave another layout")
		}
	}
}

func TestLayout_phaseChangesMoveNothing(t *testing.T) {
	cfg := loadLab(t, exampleLab)
	a := ui.NewGraph(cfg, nil)
	b := ui.NewGraph(cfg, nil)
	b.SetPhases(func(api.ID, api.Kind) api.Phase { return api.PhaseProvisioning })
	if a.Shape() != b.Shape() {
		t.Error("Shape depends on phases")
	}
	da, db := ui.Layout(a), ui.Layout(b)
	for i := range da.Boxes {
		x, y := da.Boxes[i], db.Boxes[i]
		if x.X != y.X || x.Y != y.Y || x.W != y.W {
			t.Errorf("guest %s moved when its phase changed", x.ID)
		}
	}
}

func TestLayout_exampleAndReferenceLabs(t *testing.T) {
	for _, dir := range []string{exampleLab, referenceLab} {
		cfg := loadLab(t, dir)
		d := ui.Layout(ui.NewGraph(cfg, nil))
		checkGeometry(t, d)
		// Every guest is below everything it needs.
		b := boxes(d)
		for _, id := range cfg.IDs {
			for _, e := range cfg.Edges(cfg.Guest(id)) {
				if b[e.To].Layer >= b[id].Layer {
					t.Errorf("%s: %s (layer %d) is not below %s (layer %d), which it needs", dir, id, b[id].Layer, e.To, b[e.To].Layer)
				}
			}
		}
	}
}

func TestLayout_generatedLab(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 1,000-guest lab")
	}
	cfg := loadLab(t, testlab.Generate(t, 1000))
	d := ui.Layout(ui.NewGraph(cfg, nil))
	if len(d.Boxes) != 1000 {
		t.Fatalf("%d boxes", len(d.Boxes))
	}
	checkGeometry(t, d)
}

func BenchmarkLayout(b *testing.B) {
	for _, n := range []int{16, 1000} {
		name, cfg := "example-lab", (*api.Config)(nil)
		if n == 16 {
			cfg = loadLab(b, exampleLab)
		} else {
			name, cfg = "genlab-1000", loadLab(b, testlab.Generate(b, n))
		}
		gr := ui.NewGraph(cfg, nil)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ui.Layout(gr)
			}
		})
	}
}

// mixedPhases gives the example lab one guest in each phase.
func mixedPhases(id api.ID, _ api.Kind) api.Phase {
	switch id {
	case 941:
		return api.PhaseProvisioning
	case 955:
		return api.PhaseFailed
	case 8001:
		return api.PhasePending
	}
	return api.PhaseReady
}

func TestRenderSVG_golden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		graph  func() *ui.Graph
	}{
		{"example lab, every phase", "example-lab.svg", func() *ui.Graph {
			gr := ui.NewGraph(loadLab(t, exampleLab), nil)
			gr.SetPhases(mixedPhases)
			gr.AddOrphan(970, api.KindLXC)
			return gr
		}},
		{"example lab, 956's chain, never applied", "example-lab-956.svg", func() *ui.Graph {
			cfg := loadLab(t, exampleLab)
			return ui.NewGraph(cfg, cfg.Closure([]api.ID{956}, nil))
		}},
		{"reference lab", "reference-lab.svg", func() *ui.Graph {
			return ui.NewGraph(loadLab(t, referenceLab), nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := ui.RenderSVG(&buf, tt.graph()); err != nil {
				t.Fatal(err)
			}
			wellFormed(t, buf.Bytes())
			assertGolden(t, tt.golden, buf.Bytes())
		})
	}
}

func TestRenderSVG_drawsKindsPhasesAndEdges(t *testing.T) {
	gr := ui.NewGraph(loadLab(t, exampleLab), nil)
	gr.SetPhases(mixedPhases)
	gr.AddOrphan(970, api.KindLXC)
	var buf bytes.Buffer
	if err := ui.RenderSVG(&buf, gr); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	for _, want := range []string{
		// Nodes: kind, template mark, phase; focusable.
		`<g class="node lxc phase-Provisioning" id="guest-941" data-id="941" data-kind="lxc" data-phase="Provisioning" data-template="false" tabindex="0" role="button"`,
		`<g class="node lxc phase-Failed" id="guest-955"`,
		`<g class="node vm phase-Pending" id="guest-8001"`,
		`<g class="node lxc template phase-Ready" id="guest-900"`,
		`<g class="node vm template phase-Ready" id="guest-8000"`,
		`<g class="node lxc phase-Orphaned" id="guest-970"`,
		`<text class="sub" x="`, `>VM · template · Ready</text>`,
		// Shapes: LXC boxes, VM stadiums, templates stacked.
		`rx="4" fill="#fee2e2" stroke="#dc2626"`,
		`rx="23" fill="#f1f5f9" stroke="#64748b"`,
		`<rect class="stack"`,
		// Edges: build solid, runtime dashed.
		`<path class="edge build" data-from="900" data-to="901"`,
		`<path class="edge runtime" data-from="953" data-to="941"`,
		`.phoenix-graph .edge.runtime{stroke:#7c3aed;stroke-dasharray:6 4}`,
		`marker-end="url(#arrow-runtime)"`,
		// The legend names every phase.
		`>Pending</text>`, `>Provisioning</text>`, `>Ready</text>`, `>Failed</text>`, `>Orphaned</text>`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	if strings.Contains(svg, `class="edge build" data-from="953"`) {
		t.Error("953 is a dependency, never a clone source, yet has a build edge")
	}
	if n := strings.Count(svg, `<g class="node `); n != 17 {
		t.Errorf("%d nodes, want 16 guests and 1 orphan", n)
	}
}

func TestRenderSVG_escapesNames(t *testing.T) {
	nodes := lxc(100, 101)
	nodes[0].Name = `<script>alert("x")</script> & co`
	nodes[1].Name = strings.Repeat("very-long-name-", 10)
	var buf bytes.Buffer
	if err := ui.RenderSVG(&buf, g(nodes, build(100, 101))); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	if strings.Contains(buf.String(), "<script>") {
		t.Error("a guest name reached the SVG unescaped")
	}
	if !strings.Contains(buf.String(), "…</text>") {
		t.Error("a long name was not cut to fit its box")
	}
}

func TestWriteSVG_embedLeavesStyleToThePage(t *testing.T) {
	var buf bytes.Buffer
	if err := ui.WriteSVG(&buf, ui.Layout(g(lxc(100))), ui.SVGOptions{Embed: true}); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "<style>") || strings.HasPrefix(s, "<?xml") {
		t.Errorf("embedded SVG carries a <style> or an XML declaration:\n%s", s[:min(len(s), 300)])
	}
}

// A phase or kind read from a corrupt or planted status file is drawn as
// text, never as markup.
func TestRenderSVG_escapesEveryValue(t *testing.T) {
	gr := ui.NewGraph(loadLab(t, exampleLab), nil)
	gr.SetPhases(func(id api.ID, kind api.Kind) api.Phase { return `"><script>alert(1)</script>` })
	gr.AddOrphan(970, `lxc"><script>alert(2)</script>`)
	var buf bytes.Buffer
	if err := ui.RenderSVG(&buf, gr); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "<script") || !strings.Contains(s, "&lt;script&gt;") {
		t.Errorf("hostile phase or kind not escaped:\n%.2000s", s)
	}
}
