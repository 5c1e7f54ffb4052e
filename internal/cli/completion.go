package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/internal/desired"
)

// completeIDs offers the guest IDs of the config dir, each with its name
// and kind as the description shells show beside it; IDs already on the
// line are left out. An unreadable or invalid config offers nothing rather
// than failing the shell.
func (a *app) completeIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cfg, err := desired.Load(a.opts.ConfigDir)
	if err != nil || cfg == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	given := map[string]bool{}
	for _, s := range args {
		given[s] = true
	}
	var out []string
	for _, id := range cfg.IDs {
		s := id.String()
		if given[s] || !strings.HasPrefix(s, toComplete) {
			continue
		}
		g := cfg.Guest(id)
		desc := string(g.Kind)
		if g.Spec.Name != "" {
			desc = fmt.Sprintf("%s (%s)", g.Spec.Name, g.Kind)
		}
		out = append(out, s+"\t"+desc)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeValues completes a flag from a fixed list.
func completeValues(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// registerCompletions wires completion into the command tree: guest IDs
// for every verb that takes them, fixed values for the enumerated flags.
func (a *app) registerCompletions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("backend", completeValues("auto", "sim", "pve", "pve-api"))
	_ = root.RegisterFlagCompletionFunc("output", completeValues("text", "json"))
	for _, c := range root.Commands() {
		if c.ValidArgsFunction == nil && takesIDs(c) {
			c.ValidArgsFunction = a.completeIDs
		}
		if c.Flags().Lookup("format") != nil {
			_ = c.RegisterFlagCompletionFunc("format", completeValues("mermaid", "dot", "svg"))
		}
		if c.Flags().Lookup("log-format") != nil {
			_ = c.RegisterFlagCompletionFunc("log-format", completeValues("text", "json"))
		}
	}
}

// takesIDs reports whether a verb's usage line names guest IDs.
func takesIDs(c *cobra.Command) bool {
	return strings.Contains(c.Use, "ID...")
}
