package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// defaultSetupSteps maps each host setup step to the section of
// phoenix_hypervisor_config.json that configures it, in the order the old
// tool ran them. A config may list its own order in setup_steps.
var defaultSetupSteps = []struct{ step, section string }{
	{"users", "users"},
	{"zfs", "zfs"},
	{"storage", "proxmox_storage_ids"},
	{"network", "network"},
	{"nfs", "nfs"},
	{"samba", "samba"},
	{"nvidia", "nvidia_driver"},
	{"docker", "docker"},
}

type setupStep struct {
	name     string
	settings json.RawMessage
}

func setupSteps(cfg *api.Config) ([]setupStep, error) {
	hv := cfg.Hypervisor
	if raw, ok := hv["setup_steps"]; ok {
		var names []string
		if err := json.Unmarshal(raw, &names); err != nil {
			return nil, usageErr("%s: field setup_steps: want a list of step names: %v", cfg.HypervisorPath, err)
		}
		out := make([]setupStep, len(names))
		for i, n := range names {
			out[i] = setupStep{n, hv[n]}
		}
		return out, nil
	}
	var out []setupStep
	for _, s := range defaultSetupSteps {
		if raw, ok := hv[s.section]; ok {
			out = append(out, setupStep{s.step, raw})
		}
	}
	return out, nil
}

func (a *app) setupCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Run the host setup steps of phoenix_hypervisor_config.json, in order, each once",
		Long: `setup runs the host setup steps (users, zfs, storage, network, nfs, samba,
nvidia, docker: those whose section is present, or the list in setup_steps)
in order. Each step runs once: a marker in <state-dir>/setup records it with
a hash of its settings, and the step runs again when its settings change or
with --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig("setup")
			if err != nil {
				return err
			}
			steps, err := setupSteps(cfg)
			if err != nil {
				a.fail("setup", err)
				return err
			}
			e, err := a.open(cfg)
			if err != nil {
				return err
			}
			runner, ok := e.host.(hypervisor.SetupRunner)
			if !ok {
				return fmt.Errorf("the %s backend cannot run host setup", a.opts.backendName())
			}
			if !a.opts.DryRun {
				release, err := a.writerLock(cmd.Context(), "setup")
				if err != nil {
					a.fail("setup", err)
					return err
				}
				defer release()
			}
			return a.runSetup(cmd.Context(), runner, steps, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "run every step again, even those already done")
	cmd.Flags().BoolVar(&a.opts.DryRun, "dry-run", false, "print the steps that would run and change nothing")
	a.bindWaitLock(cmd)
	return cmd
}

// setupDoc is setup's -o json document: the verbs' result document, with
// no actions, plus the host setup steps.
type setupDoc struct {
	plan.ResultDoc
	Steps []plan.StepDoc `json:"steps"`
}

func (a *app) runSetup(ctx context.Context, runner hypervisor.SetupRunner, steps []setupStep, force bool) error {
	dir := filepath.Join(a.opts.StateDir, "setup")
	if !a.opts.DryRun {
		if _, err := fsutil.SubdirPrivate(a.opts.StateDir, "setup"); err != nil {
			return err
		}
	}
	doc := setupDoc{ResultDoc: plan.ResultDoc{Verb: "setup", Targets: []string{}, DryRun: a.opts.DryRun, OK: true, Actions: []plan.ActionDoc{}}}
	t0 := time.Now()
	nameW := 0
	for _, s := range steps {
		nameW = max(nameW, len(s.name))
	}
	pal := a.colors()
	for _, s := range steps {
		sum := sha256.Sum256(s.settings)
		hash := hex.EncodeToString(sum[:8])
		marker := filepath.Join(dir, s.name+".done")
		prev, _ := os.ReadFile(marker)
		sd := plan.StepDoc{Name: s.name}
		switch {
		case !force && strings.TrimSpace(string(prev)) == hash:
			sd.Result = "unchanged"
		case a.opts.DryRun:
			sd.Result = "planned"
		default:
			st := time.Now()
			err := runner.RunSetupStep(ctx, s.name, s.settings)
			sd.DurationMS = time.Since(st).Milliseconds()
			if err != nil {
				sd.Result, sd.Error, doc.OK = "failed", err.Error(), false
			} else {
				sd.Result = "ok"
				if err := fsutil.WriteFile(marker, []byte(hash+"\n"), 0o600); err != nil {
					return err
				}
			}
		}
		doc.Steps = append(doc.Steps, sd)
		if a.opts.Output == "text" {
			line := fmt.Sprintf("setup %-*s %s", nameW, s.name, pal.result(sd.Result))
			if sd.Error != "" {
				line += ": " + sd.Error
			}
			fmt.Fprintln(a.stdout, line)
		}
		if !doc.OK {
			break
		}
	}
	doc.ElapsedMS = time.Since(t0).Milliseconds()
	doc.CriticalPathMS = doc.ElapsedMS
	if a.opts.Output == "json" {
		if err := a.writeJSON(doc); err != nil {
			return err
		}
	}
	if !doc.OK {
		return errFailed
	}
	return nil
}
