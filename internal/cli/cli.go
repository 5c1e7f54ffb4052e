package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/version"
)

// Exit codes (docs/design.md, "Output and exit codes").
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// failed is returned when an action failed; its details were already printed.
var errFailed = &exitError{code: ExitFailed, err: errors.New("one or more actions failed")}

// Command returns phoenix's command tree, for generating man pages and
// shell completions; Run is how the binary executes it.
func Command(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	return a.rootCommand()
}

// Run runs phoenix with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &app{ctx: ctx, stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	for _, c := range app.closers {
		_ = c.Close()
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if !errors.Is(err, errFailed) && !app.reported {
		fmt.Fprintf(stderr, "phoenix: %v\n", err)
	}
	return code
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var inv *api.InvalidError
	var use *plan.UsageError
	if errors.As(err, &inv) || errors.As(err, &use) || errors.Is(err, fsutil.ErrUnsafe) {
		return ExitUsage
	}
	// cobra's own errors (unknown verb or flag, wrong arguments) are usage.
	if isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailed
}

// cobraUsage marks errors from flag parsing and argument checks.
type cobraUsage struct{ err error }

func (e *cobraUsage) Error() string { return e.err.Error() }
func (e *cobraUsage) Unwrap() error { return e.err }

func isCobraUsage(err error) bool {
	var cu *cobraUsage
	return errors.As(err, &cu) || isUnknownCommand(err)
}

func isUnknownCommand(err error) bool {
	msg := err.Error()
	return len(msg) > 16 && (msg[:16] == "unknown command " || msg[:13] == "unknown flag:" || msg[:13] == "unknown short")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "phoenix <verb> [ID...]",
		Short: "Provision Proxmox VE guests (LXC and VM) from JSON desired state",
		Long: `phoenix provisions Proxmox VE guests (LXC containers and QEMU VMs) from the
JSON files in its config directory, following the dependency graph between
them (clone sources and dependencies).`,
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &cobraUsage{err} })
	a.opts.bindFlags(root)
	// Declared here so that cobra does not give --version the shorthand -v:
	// -v is the controller's log verbosity, and one letter means one thing.
	root.Flags().Bool("version", false, "print the version on one line (the version verb prints more)")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(
		a.createCommand(),
		a.convergeCommand(),
		a.startCommand(),
		a.stopCommand("stop", "Stop the named guests (only those)"),
		a.stopCommand("restart", "Restart the named guests (only those)"),
		a.deleteCommand(),
		a.statusCommand(),
		a.letsGoCommand(),
		a.setupCommand(),
		a.validateCommand(),
		a.graphCommand(),
		a.doctorCommand(),
		a.diffCommand(),
		a.controllerCommand(),
		a.versionCommand(),
	)
	root.SetUsageTemplate(usageTemplate)
	a.registerCompletions(root)
	return root
}

// args checks that every argument is a guest ID of the config.
func parseTargets(cfg *api.Config, args []string) ([]api.ID, error) {
	var out []api.ID
	seen := map[api.ID]bool{}
	for _, s := range args {
		id, err := api.ParseID(s)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		if cfg != nil && cfg.Guest(id) == nil {
			return nil, usageErr("unknown guest %s: not in %s or %s of %s", s, api.LXCFile, api.VMFile, cfg.Dir)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func needIDs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return &cobraUsage{fmt.Errorf("%s needs at least one guest ID", cmd.Name())}
	}
	return nil
}
