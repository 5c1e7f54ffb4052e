package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func (a *app) graphCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [ID...]",
		Short: "Print the dependency graph (of the named guests' chains, or of all) as Mermaid, DOT or SVG",
		Long: `graph prints the dependency graph. Solid edges go from a clone source to its
clone (build edges). Dashed edges are runtime edges: in Mermaid they go from
a guest to the guest it needs running, labelled "needs"; in DOT and SVG from
the dependency to the guest that needs it, as the order things start in.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig("graph")
			if err != nil {
				return err
			}
			targets, err := parseTargets(cfg, args)
			if err != nil {
				return err
			}
			ids := cfg.Order()
			if len(targets) > 0 {
				ids = cfg.Closure(targets, nil)
			}
			switch format {
			case "mermaid":
				writeMermaid(a.stdout, cfg, ids)
			case "dot":
				writeDOT(a.stdout, cfg, ids)
			case "svg":
				return a.writeGraphSVG(a.stdout, cfg, ids, len(targets) == 0)
			default:
				return usageErr("--format %q: want mermaid, dot or svg", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "mermaid", "mermaid, dot or svg (the status page's picture, phases from the state dir)")
	return cmd
}

func label(g *api.Guest) string {
	name := strings.NewReplacer(`"`, "'", "\n", " ").Replace(g.Spec.Name)
	return fmt.Sprintf("%s %s (%s)", g.ID, name, g.Kind)
}

func writeMermaid(w io.Writer, cfg *api.Config, ids []api.ID) {
	fmt.Fprintln(w, "graph TD")
	for _, id := range ids {
		g := cfg.Guest(id)
		open, close := "[", "]"
		if g.Kind == api.KindVM {
			open, close = "([", "])"
		}
		fmt.Fprintf(w, "  g%s%s\"%s\"%s\n", id, open, label(g), close)
	}
	for _, id := range ids {
		for _, e := range cfg.Edges(cfg.Guest(id)) {
			if e.Kind == api.BuildEdge {
				fmt.Fprintf(w, "  g%s -->|clone| g%s\n", e.To, id)
			} else {
				// Read as a sentence: "941 needs 953".
				fmt.Fprintf(w, "  g%s -.->|needs| g%s\n", id, e.To)
			}
		}
	}
}

func writeDOT(w io.Writer, cfg *api.Config, ids []api.ID) {
	fmt.Fprintln(w, "digraph phoenix {")
	fmt.Fprintln(w, "  rankdir=TB;")
	for _, id := range ids {
		g := cfg.Guest(id)
		shape := "box"
		if g.Kind == api.KindVM {
			shape = "ellipse"
		}
		fmt.Fprintf(w, "  \"%s\" [label=\"%s\", shape=%s];\n", id, label(g), shape)
	}
	for _, id := range ids {
		for _, e := range cfg.Edges(cfg.Guest(id)) {
			style := "solid"
			if e.Kind == api.RuntimeEdge {
				style = "dashed"
			}
			fmt.Fprintf(w, "  \"%s\" -> \"%s\" [style=%s];\n", e.To, id, style)
		}
	}
	fmt.Fprintln(w, "}")
}
