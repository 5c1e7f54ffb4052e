package cli

import (
	"errors"
	"io"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/controller/metrics"
	"github.com/phoenix-hypervisor/phoenix/controller/statelock"
	"github.com/phoenix-hypervisor/phoenix/internal/httpguard"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"
)

func (a *app) controllerCommand() *cobra.Command {
	copts := controller.DefaultOptions()
	var allowConverge bool
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the reconcile loop: watch the JSON files and keep the host in line with them",
		Long: `controller watches the config directory and reconciles every guest whose
effective spec changed (or that is missing on the host, or whose
converge.phoenix.io/requestedAt annotation is new) through a rate-limited
workqueue, until SIGINT or SIGTERM. An invalid file changes nothing: the last
valid desired state stays in force. A guest removed from the files is marked
Orphaned and left alone unless --prune.

While it runs it is the only writer of the state dir: other phoenix verbs that
change guests refuse (exit 2) unless --wait-lock, and "phoenix converge" hands
its request to the controller. Metrics, /healthz and /readyz are served on
--metrics-addr, and at / a live status page: the dependency graph coloured by
phase, every guest's status, and (with --ui-allow-converge and the bearer
token in <state-dir>/ui-token) a converge button.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.opts.validate(); err != nil {
				return err
			}
			copts.ConfigDir, copts.StateDir = a.opts.ConfigDir, a.opts.StateDir
			copts.ScriptsDir, copts.Parallel = a.opts.ScriptsDir, a.opts.Parallel
			if err := copts.Validate(); err != nil {
				return usageErr("%v", err)
			}
			log, err := copts.NewLogger(a.stderr)
			if err != nil {
				return usageErr("%v", err)
			}
			if err := a.opts.stateDirReady(); err != nil {
				return err
			}
			host, err := a.opts.newHost(logWriter{log})
			if err != nil {
				return err
			}
			if c, ok := host.(io.Closer); ok {
				a.closers = append(a.closers, c)
			}
			st, err := status.NewStore(filepath.Join(a.opts.StateDir, "status"))
			if err != nil {
				return err
			}
			// The first sync writes every guest's status in a burst.
			st.DeferFrees()
			st.JournalFirsts()
			st.DelayGroups()
			defer st.Close()
			c, err := controller.New(copts, host, st, log, metrics.NewRegistry())
			if err != nil {
				return err
			}
			if allowConverge && copts.MetricsAddr != "" && !httpguard.Loopback(copts.MetricsAddr) {
				log.Info("WARNING: --ui-allow-converge on a non-loopback address: anyone who can reach it and holds the token can converge guests; prefer 127.0.0.1 behind a reverse proxy", "addr", copts.MetricsAddr)
			}
			if err := a.mountStatusPage(cmd.Context(), c, host, st, allowConverge); err != nil {
				return err
			}
			err = c.Run(cmd.Context())
			var held *statelock.HeldError
			if errors.As(err, &held) {
				return &exitError{code: ExitUsage, err: err}
			}
			return err
		},
	}
	copts.BindFlags(cmd.Flags())
	cmd.Flags().BoolVar(&allowConverge, "ui-allow-converge", false, "let the status page ask for converges (POST /api/v1/guests/{id}/converge), with the bearer token in <state-dir>/"+ui.TokenFile+" (created when missing)")
	return cmd
}

// logWriter turns the backend's notices (a cleared lock) into log lines of
// the controller.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(strings.TrimPrefix(string(p), "phoenix: ")))
	return len(p), nil
}
