package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// RunOnHost runs a script of the scripts folder on the host with args (the
// old tool's host setup scripts), under the same checks as every script.
func (h *Host) RunOnHost(ctx context.Context, path string, args []string) error {
	c, err := guest.Check(h.opts.ScriptsDir, path)
	if err == nil {
		err = local{h}.RunScript(ctx, 0, c, args)
	}
	if err != nil {
		return fmt.Errorf("host script %s: %w", filepath.Base(path), err)
	}
	return nil
}

// RunSetupStep runs <ScriptsDir>/setup/<step>.sh on the host, with the
// step's settings as JSON in a temp file given as its first argument.
func (h *Host) RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if err := h.runSetupStep(ctx, step, settings); err != nil {
		return fmt.Errorf("setup step %q: %w", step, err)
	}
	return nil
}

func (h *Host) runSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	c, err := guest.SetupStep(h.opts.ScriptsDir, step)
	if err != nil {
		return err
	}
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	file, err := writeTemp("phoenix-setup-*.json", settings)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	return local{h}.RunScript(ctx, 0, c, []string{file})
}
