package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"
)

// convergeToken is a fresh value for the converge annotation. The CLI's
// hand-off and the status page both use it, so that the controller and the
// hand-off's "handled" check see one format (RFC 3339 times compare).
func convergeToken() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// handOffConverger asks the running controller for a converge the way
// `phoenix converge` does while one runs: by setting the guest's converge
// annotation in its file (controller.RequestConverge).
type handOffConverger struct{}

var _ ui.Converger = handOffConverger{}

func (handOffConverger) RequestConverge(_ context.Context, g *api.Guest) (string, error) {
	token := convergeToken()
	if err := controller.RequestConverge([]*api.Guest{g}, token); err != nil {
		return "", err
	}
	return token, nil
}

// mountStatusPage puts the status page on the controller's listener. With
// allowConverge it reads (or creates) the bearer token in the state dir
// first and refuses to start on a token file others can read.
func (a *app) mountStatusPage(ctx context.Context, c *controller.Controller, host hypervisor.Host, st *status.Store, allowConverge bool) error {
	opts := ui.Options{AllowConverge: allowConverge, AllowedHosts: c.AllowedHosts()}
	var conv ui.Converger
	if allowConverge {
		token, path, err := ui.LoadOrCreateToken(a.opts.StateDir)
		if err != nil {
			return usageErr("--ui-allow-converge: %v", err)
		}
		opts.Token, opts.TokenPath, conv = token, path, handOffConverger{}
	}
	h, err := ui.NewHandler(ctx, ui.Sources{Config: c.Desired, Store: st, Host: host}, conv, opts)
	if err != nil {
		return err
	}
	c.Handle("/", h)
	return nil
}

// writeGraphSVG draws the graph as the status page does, with each guest's
// recorded phase when the state dir has status records (else Pending). It
// creates nothing: graph is a read-only verb.
func (a *app) writeGraphSVG(w io.Writer, cfg *api.Config, ids []api.ID, all bool) error {
	g := ui.NewGraph(cfg, ids)
	dir := filepath.Join(a.opts.StateDir, "status")
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		st, err := status.NewStore(dir)
		if err != nil {
			return err
		}
		if all {
			// Guests recorded but gone from the files, as on the page.
			recorded, _ := st.IDs()
			for _, id := range recorded {
				if cfg.Guest(id) != nil {
					continue
				}
				if s, err := st.Get(id, ""); err == nil && s.Kind != "" {
					g.AddOrphan(id, s.Kind)
				}
			}
		}
		g.SetPhases(func(id api.ID, kind api.Kind) api.Phase {
			s, err := st.Get(id, kind)
			if err != nil {
				return ""
			}
			return s.Phase
		})
	}
	return ui.RenderSVG(w, g)
}
