package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// StatusView is `phoenix status -o json` for one guest: live state from the
// host plus the recorded status (schemas/status.schema.json).
type StatusView struct {
	Exists bool   `json:"exists"`
	State  string `json:"state"`
	Name   string `json:"name,omitempty"`
	// OutOfDate: the guest was applied once and its desired state has
	// changed since (its spec hash differs from the one last applied).
	OutOfDate bool `json:"outOfDate"`
	api.Status
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status [ID...]",
		Short: "Show live state from the hypervisor and the recorded status of guests (all when none named)",
		Long: `status shows, for each guest, whether it exists and runs on the host and what
phoenix recorded about it (phase, last applied, last error). SPEC says
whether the files still say what was last applied ("current") or changed since
("out of date": phoenix diff shows how, phoenix converge applies it). With one
ID and -o json it prints one object; otherwise a JSON array.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.opts.readOnly = true
			e, targets, err := a.prepare("status", args)
			if err != nil {
				return err
			}
			all := len(targets) == 0
			if all {
				targets = e.cfg.IDs
			}
			views := make([]StatusView, 0, len(targets))
			for _, id := range targets {
				v, err := a.view(cmd, e, e.cfg.Guest(id).Kind, id)
				if err != nil {
					return err
				}
				views = append(views, v)
			}
			if all {
				// Guests phoenix recorded that are no longer in the files.
				ids, _ := e.status.IDs()
				for _, id := range ids {
					if e.cfg.Guest(id) != nil {
						continue
					}
					st, err := e.status.Get(id, "")
					if err != nil || st.Kind == "" {
						continue
					}
					v, err := a.view(cmd, e, st.Kind, id)
					if err != nil {
						return err
					}
					views = append(views, v)
				}
			}
			if a.opts.Output == "json" {
				if len(args) == 1 {
					return a.writeJSON(views[0])
				}
				return a.writeJSON(views)
			}
			// Colour goes on after the columns are laid out: the escape
			// codes would count as width.
			pal := a.colors()
			var buf strings.Builder
			tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tNAME\tSTATE\tPHASE\tSPEC\tLAST APPLIED\tLAST ERROR")
			for _, v := range views {
				applied := "-"
				if v.LastAppliedAt != nil {
					applied = v.LastAppliedAt.Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Kind, v.Name, v.State, v.Phase, specState(v), applied, oneLine(v.LastError, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			lines := strings.SplitAfter(buf.String(), "\n")
			for i, line := range lines {
				if i == 0 {
					line = pal.bold(strings.TrimSuffix(line, "\n")) + "\n"
				} else if i <= len(views) {
					line = colorStatusLine(pal, line, views[i-1])
				}
				fmt.Fprint(a.stdout, line)
			}
			return nil
		},
	}
}

func (a *app) view(cmd *cobra.Command, e *env, kind api.Kind, id api.ID) (StatusView, error) {
	st, err := e.status.Get(id, kind)
	if err != nil {
		// One unreadable record hides that guest's history, not the rest.
		st = &api.Status{ID: id.String(), Kind: kind, Phase: api.PhaseUnknown, LastError: err.Error()}
	}
	if st.Kind == "" {
		st.Kind = kind
	}
	v := StatusView{State: "absent", Status: *st}
	if g := e.cfg.Guest(id); g != nil {
		v.Name = g.Spec.Name
		v.OutOfDate = st.ObservedSpecHash != "" && st.ObservedSpecHash != g.Hash
	}
	hg, ok, err := hypervisor.Exists(cmd.Context(), e.host, kind, id)
	if err != nil {
		return StatusView{}, fmt.Errorf("status of %s: %w", id, err)
	}
	if ok {
		v.Exists, v.State = true, "stopped"
		if hg.Running {
			v.State = "running"
		}
	}
	return v, nil
}

// specState is the SPEC column: whether the files changed since the guest
// was last applied.
func specState(v StatusView) string {
	switch {
	case v.OutOfDate:
		return "out of date"
	case v.ObservedSpecHash == "":
		return "-"
	}
	return "current"
}

// colorStatusLine colours a laid-out status line: a failed phase red, an
// out-of-date spec yellow.
func colorStatusLine(pal palette, line string, v StatusView) string {
	if !pal.on {
		return line
	}
	if v.Phase == api.PhaseFailed {
		return pal.red(strings.TrimSuffix(line, "\n")) + "\n"
	}
	if v.OutOfDate {
		return strings.Replace(line, "out of date", pal.yellow("out of date"), 1)
	}
	return line
}

func oneLine(s string, max int) string {
	for i, c := range s {
		if c == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}
