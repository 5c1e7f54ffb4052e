package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/internal/version"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version of this binary",
		Long: `version prints what this binary was built from: the version (git describe
of the source tree), the commit, the build date and the Go toolchain. With
-o json it prints one JSON object. "phoenix --version" prints the same on one
line. (-v is not version: it is the controller's log verbosity.)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.opts.validate(); err != nil {
				return err
			}
			info := version.Get()
			if a.opts.Output == "json" {
				return a.writeJSON(info)
			}
			_, err := fmt.Fprint(a.stdout, info.Text())
			return err
		},
	}
}
