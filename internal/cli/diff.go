package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// DiffDoc is `phoenix diff -o json`: one entry per differing key.
type DiffDoc struct {
	// Guests is how many guests were compared.
	Guests int `json:"guests"`
	// Differ is true when at least one key differs (exit 1).
	Differ  bool        `json:"differ"`
	Changes []DiffEntry `json:"changes"`
}

// DiffEntry is one key of one guest that differs.
type DiffEntry struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	plan.Change
}

// errDiffers ends diff with exit 1, like diff(1) and kubectl diff; the
// differences were already printed.
var errDiffers = &exitError{code: ExitFailed, err: errors.New("the host differs from the desired state")}

func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff [ID...]",
		Short: "Show, key by key, where the host differs from the desired state (all guests when none named)",
		Long: `diff compares the desired state with the host for every guest of the named
guests' chains (clone sources and dependencies), or for every guest when none
is named, and prints each key that differs as "ID key: host -> desired":
config values, mount points and devices phoenix manages, the root disk size,
missing snapshots and missing guests. It changes nothing.

Exit status: 0 when nothing differs, 1 when something does, 2 on trouble.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, targets, err := a.prepare("diff", args)
			if err != nil {
				if exitCode(err) == ExitFailed {
					// Exit 1 means "differs": trouble must not look like it.
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			ids := e.cfg.Order()
			if len(targets) > 0 {
				ids = e.cfg.Closure(targets, nil)
			}
			doc := DiffDoc{Guests: len(ids), Changes: []DiffEntry{}}
			for _, id := range ids {
				g := e.cfg.Guest(id)
				changes, err := reconcilers.Diff(cmd.Context(), e.host, g)
				if err != nil {
					return &exitError{code: ExitUsage, err: fmt.Errorf("diff %s %s: %w", g.Kind, id, err)}
				}
				for _, c := range changes {
					doc.Changes = append(doc.Changes, DiffEntry{ID: id.String(), Kind: string(g.Kind), Name: g.Spec.Name, Change: c})
				}
			}
			doc.Differ = len(doc.Changes) > 0
			if a.opts.Output == "json" {
				if err := a.writeJSON(doc); err != nil {
					return err
				}
			} else {
				a.printDiff(doc)
			}
			if doc.Differ {
				a.reported = true
				return errDiffers
			}
			return nil
		},
	}
}

func (a *app) printDiff(doc DiffDoc) {
	pal := a.colors()
	guests := map[string]bool{}
	for _, c := range doc.Changes {
		guests[c.ID] = true
		fmt.Fprintf(a.stdout, "%s %s\n", pal.bold(c.ID), changeText(pal, c.Change))
	}
	if !doc.Differ {
		fmt.Fprintf(a.stdout, "No differences: the host matches the desired state of %s.\n", plural(doc.Guests, "guest"))
		return
	}
	fmt.Fprintf(a.stdout, "%s on %s (of %s compared).\n", plural(len(doc.Changes), "difference"), plural(len(guests), "guest"), plural(doc.Guests, "guest"))
}

// changeText renders one change as "key: host -> desired".
func changeText(pal palette, c plan.Change) string {
	return fmt.Sprintf("%s: %s -> %s", c.Key, pal.red(showValue(c.Have)), pal.green(showValue(c.Want)))
}

// showValue makes a value readable on one line: "(none)" for a key that is
// not set, quoted when it holds a line break (lxc.mount.entry given twice).
func showValue(v string) string {
	if v == "" {
		return "(none)"
	}
	if strings.ContainsAny(v, "\n\t") {
		return strconv.Quote(v)
	}
	return v
}

// printChanges lists changes indented under a dry run's action.
func printChanges(w io.Writer, pal palette, indent string, changes []plan.Change) {
	for _, c := range changes {
		fmt.Fprintf(w, "%s%s\n", indent, changeText(pal, c))
	}
}

// plural writes "1 action", "2 actions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
