package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func (a *app) validateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Load and check every configuration file; report every problem found (exit 0 or 2)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig("validate")
			if err != nil {
				return err
			}
			if a.opts.Output == "json" {
				return a.writeJSON(map[string]any{"valid": true, "guests": len(cfg.IDs), "problems": []api.Problem{}, "warnings": append([]api.Problem{}, cfg.Warnings...)})
			}
			lxc, vm := 0, 0
			for _, id := range cfg.IDs {
				if cfg.Guest(id).Kind == api.KindLXC {
					lxc++
				} else {
					vm++
				}
			}
			fmt.Fprintf(a.stdout, "%s: valid, %s (%d lxc, %d vm)\n", cfg.Dir, plural(len(cfg.IDs), "guest"), lxc, vm)
			return nil
		},
	}
	cmd.Flags().BoolVar(&a.opts.Strict, "strict", false, "treat warnings (an unknown field close to a known one) as errors")
	return cmd
}
