package ui

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// phaseColor is the fill and stroke of a guest in each phase. The same
// table feeds the SVG's presentation attributes and its CSS, so a picture
// looks the same as a file and inside the page (which recolours nodes by
// class when a phase changes).
var phaseColor = []struct {
	phase        api.Phase
	fill, stroke string
}{
	{api.PhasePending, "#f1f5f9", "#64748b"},
	{api.PhaseProvisioning, "#dbeafe", "#2563eb"},
	{api.PhaseReady, "#dcfce7", "#15803d"},
	{api.PhaseFailed, "#fee2e2", "#dc2626"},
	{api.PhaseOrphaned, "#fef3c7", "#b45309"},
}

const (
	buildColor   = "#334155"
	runtimeColor = "#7c3aed"
	legendH      = 64
	legendW      = 660
)

func colors(p api.Phase) (fill, stroke string) {
	for _, c := range phaseColor {
		if c.phase == p {
			return c.fill, c.stroke
		}
	}
	return phaseColor[0].fill, phaseColor[0].stroke
}

// GraphCSS is the style sheet of the picture. A standalone SVG carries it
// in a <style> element; the page serves it as a file instead, because its
// Content-Security-Policy forbids inline styles.
func GraphCSS() string {
	var b strings.Builder
	b.WriteString(`.phoenix-graph{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.phoenix-graph .node{cursor:pointer}
.phoenix-graph .node .shape,.phoenix-graph .node .stack{stroke-width:1.5}
.phoenix-graph .node .stack{fill:#fff}
.phoenix-graph .node .label{font-size:13px;font-weight:600;fill:#0f172a}
.phoenix-graph .node .sub{font-size:11px;fill:#334155}
.phoenix-graph .node:focus{outline:none}
.phoenix-graph .node:focus .shape,.phoenix-graph .node.selected .shape{stroke:#0f172a;stroke-width:3}
.phoenix-graph .edge{fill:none;stroke-width:1.5}
.phoenix-graph .edge.build{stroke:` + buildColor + `}
.phoenix-graph .edge.runtime{stroke:` + runtimeColor + `;stroke-dasharray:6 4}
.phoenix-graph .legend text{font-size:12px;fill:#334155}
`)
	for _, c := range phaseColor {
		fmt.Fprintf(&b, ".phoenix-graph .phase-%s .shape,.phoenix-graph .phase-%s .stack{stroke:%s}\n.phoenix-graph .phase-%s .shape{fill:%s}\n",
			c.phase, c.phase, c.stroke, c.phase, c.fill)
	}
	b.WriteString(".phoenix-graph .phase-Failed .shape{stroke-width:2.5}\n")
	return b.String()
}

// SVGOptions change how a diagram is written.
type SVGOptions struct {
	// Embed writes the SVG for inlining in the page: no XML declaration and
	// no <style> (the page links GraphCSS).
	Embed bool
}

// WriteSVG writes the diagram as an SVG document.
func WriteSVG(w io.Writer, d *Diagram, opts SVGOptions) error {
	bw := bufio.NewWriter(w)
	width := max(d.Width, legendW+2*margin)
	height := d.Height + legendH
	if !opts.Embed {
		bw.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	}
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" class="phoenix-graph" width="%d" height="%d" viewBox="0 0 %d %d" role="group" aria-labelledby="phoenix-graph-title">`+"\n",
		width, height, width, height)
	fmt.Fprintf(bw, "<title id=\"phoenix-graph-title\">phoenix dependency graph: %d guests</title>\n", len(d.Boxes))
	if !opts.Embed {
		fmt.Fprintf(bw, "<style>\n%s</style>\n", GraphCSS())
	}
	fmt.Fprintf(bw, `<defs>
<marker id="arrow-build" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="%s"/></marker>
<marker id="arrow-runtime" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="%s"/></marker>
</defs>
`, buildColor, runtimeColor)

	bw.WriteString("<g class=\"edges\">\n")
	for _, p := range d.Paths {
		writeEdge(bw, p)
	}
	bw.WriteString("</g>\n<g class=\"nodes\">\n")
	for _, b := range d.Boxes {
		writeNode(bw, b)
	}
	bw.WriteString("</g>\n")
	writeLegend(bw, d.Height)
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func edgeClass(k api.EdgeKind) (class, what string) {
	if k == api.BuildEdge {
		return "build", "clone source of"
	}
	return "runtime", "needed running by"
}

func writeEdge(w *bufio.Writer, p Path) {
	class, what := edgeClass(p.Kind)
	var d strings.Builder
	pts := p.Points
	fmt.Fprintf(&d, "M%d,%d", pts[0].X, pts[0].Y)
	for i := 0; i+1 < len(pts); i++ {
		a, b := pts[i], pts[i+1]
		if i%2 == 1 {
			// Through a long edge's bend: straight down the layer.
			fmt.Fprintf(&d, "L%d,%d", b.X, b.Y)
			continue
		}
		mid := (a.Y + b.Y) / 2
		fmt.Fprintf(&d, "C%d,%d %d,%d %d,%d", a.X, mid, b.X, mid, b.X, b.Y)
	}
	fmt.Fprintf(w, `<path class="edge %s" data-from="%s" data-to="%s" d="%s" marker-end="url(#arrow-%s)"><title>%s %s %s</title></path>`+"\n",
		class, esc(p.From), esc(p.To), d.String(), class, esc(p.From), what, esc(p.To))
}

// shape draws a guest's outline: a container is a box, a VM a stadium.
func shape(w *bufio.Writer, class string, b Box, dx, dy int, fill, stroke string) {
	rx := 4
	if b.Kind == api.KindVM {
		rx = b.H / 2
	}
	fmt.Fprintf(w, `<rect class="%s" x="%d" y="%d" width="%d" height="%d" rx="%d" fill="%s" stroke="%s"/>`, class, b.X+dx, b.Y+dy, b.W, b.H, rx, fill, stroke)
}

// esc escapes any value drawn into the SVG: phases and kinds come from
// status files, which a corrupt or planted file can fill with markup.
func esc(v any) string { return html.EscapeString(fmt.Sprint(v)) }

func writeNode(w *bufio.Writer, b Box) {
	classes := "node " + string(b.Kind)
	if b.Template {
		classes += " template"
	}
	fill, stroke := colors(b.Phase)
	sub := subtitle(b.Node)
	full := fullLabel(b.Node)
	fmt.Fprintf(w, `<g class="%s phase-%s" id="guest-%s" data-id="%s" data-kind="%s" data-phase="%s" data-template="%t" tabindex="0" role="button" aria-label="%s">`,
		esc(classes), esc(b.Phase), esc(b.ID), esc(b.ID), esc(b.Kind), esc(b.Phase), b.Template, html.EscapeString(full+", "+strings.ReplaceAll(sub, " · ", ", ")))
	fmt.Fprintf(w, "<title>%s</title>", html.EscapeString(full+" — "+sub))
	if b.Template {
		// A template is drawn as a stack: the thing clones are taken from.
		shape(w, "stack", b, 4, -4, "#fff", stroke)
	}
	shape(w, "shape", b, 0, 0, fill, stroke)
	cx := b.X + b.W/2
	fmt.Fprintf(w, `<text class="label" x="%d" y="%d" text-anchor="middle">%s</text>`, cx, b.Y+20, html.EscapeString(b.Label))
	fmt.Fprintf(w, `<text class="sub" x="%d" y="%d" text-anchor="middle">%s</text>`, cx, b.Y+36, html.EscapeString(sub))
	w.WriteString("</g>\n")
}

// writeLegend explains colours, shapes and lines below the graph.
func writeLegend(w *bufio.Writer, top int) {
	fmt.Fprintf(w, "<g class=\"legend\" transform=\"translate(%d,%d)\">\n", margin, top)
	for i, c := range phaseColor {
		x := i * 120
		fmt.Fprintf(w, `<rect x="%d" y="0" width="14" height="14" rx="3" fill="%s" stroke="%s" stroke-width="1.5"/><text x="%d" y="12">%s</text>`+"\n", x, c.fill, c.stroke, x+20, c.phase)
	}
	y := 30
	fmt.Fprintf(w, `<rect x="0" y="%d" width="26" height="16" rx="3" fill="#fff" stroke="#64748b" stroke-width="1.5"/><text x="32" y="%d">LXC</text>`+"\n", y, y+12)
	fmt.Fprintf(w, `<rect x="80" y="%d" width="30" height="16" rx="8" fill="#fff" stroke="#64748b" stroke-width="1.5"/><text x="116" y="%d">VM</text>`+"\n", y, y+12)
	fmt.Fprintf(w, `<rect x="164" y="%d" width="26" height="16" rx="3" fill="#fff" stroke="#64748b" stroke-width="1.5"/><rect x="160" y="%d" width="26" height="16" rx="3" fill="#fff" stroke="#64748b" stroke-width="1.5"/><text x="196" y="%d">template</text>`+"\n", y-4, y, y+12)
	fmt.Fprintf(w, `<path d="M270,%d h36" stroke="%s" stroke-width="1.5" marker-end="url(#arrow-build)"/><text x="314" y="%d">clone (build)</text>`+"\n", y+8, buildColor, y+12)
	fmt.Fprintf(w, `<path d="M420,%d h36" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4" marker-end="url(#arrow-runtime)"/><text x="464" y="%d">dependency (runtime)</text>`+"\n", y+8, runtimeColor, y+12)
	w.WriteString("</g>\n")
}

// RenderSVG lays out g and writes it as a standalone SVG document: what
// `phoenix graph --format svg` prints.
func RenderSVG(w io.Writer, g *Graph) error {
	return WriteSVG(w, Layout(g), SVGOptions{})
}
