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
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
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
	// path and args, for a script of the old tool's hypervisor_setup/,
	// run on the host as its hypervisor-manager ran it.
	path string
	args []string
}

// legacySetupScripts are the old tool's host setup scripts, in the order
// its hypervisor-manager ran them.
var legacySetupScripts = []string{
	"hypervisor_initial_setup.sh",
	"hypervisor_feature_setup_zfs.sh",
	"hypervisor_feature_setup_firewall.sh",
	"hypervisor_feature_setup_nfs.sh",
	"hypervisor_feature_configure_vfio.sh",
	"hypervisor_feature_install_nvidia.sh",
	"hypervisor_feature_initialize_nvidia_gpus.sh",
	"hypervisor_feature_setup_dns_server.sh",
	"hypervisor_feature_create_heads_user.sh",
	"hypervisor_feature_setup_samba.sh",
	"hypervisor_feature_create_admin_user.sh",
	"hypervisor_feature_provision_shared_resources.sh",
	"hypervisor_feature_setup_apparmor.sh",
	"hypervisor_feature_fix_apparmor_tunables.sh",
	"hypervisor_feature_setup_auto_renewal.sh",
}

// legacySetupSteps runs the old scripts with the hypervisor config file as
// their argument (the ZFS one in its safe, non-destructive mode); a step
// runs again when that file changes. Every script must be there.
func legacySetupSteps(cfg *api.Config, bin string) ([]setupStep, error) {
	if cfg.HypervisorPath == "" {
		return nil, usageErr("setup: the old setup scripts need %s in %s", api.HypervisorFile, cfg.Dir)
	}
	data, err := os.ReadFile(cfg.HypervisorPath)
	if err != nil {
		return nil, err
	}
	var missing []string
	var out []setupStep
	for _, name := range legacySetupScripts {
		path := filepath.Join(bin, reconcilers.LegacySetup, name)
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			missing = append(missing, "  "+path)
			continue
		}
		args := []string{cfg.HypervisorPath}
		if name == "hypervisor_feature_setup_zfs.sh" {
			args = []string{"--config", cfg.HypervisorPath, "--mode", "safe"}
		}
		out = append(out, setupStep{name: strings.TrimSuffix(name, ".sh"), settings: data, path: path, args: args})
	}
	if len(missing) > 0 {
		return nil, usageErr("setup: %d of the old setup scripts are missing or not executable; nothing was run:\n%s", len(missing), strings.Join(missing, "\n"))
	}
	return out, nil
}

// hostScripts is implemented by backends that run a script on the
// Proxmox host itself (pve; the sim records it).
type hostScripts interface {
	RunOnHost(ctx context.Context, path string, args []string) error
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
			out[i] = setupStep{name: n, settings: hv[n]}
		}
		return out, nil
	}
	var out []setupStep
	for _, s := range defaultSetupSteps {
		if raw, ok := hv[s.section]; ok {
			out = append(out, setupStep{name: s.step, settings: raw})
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
in order. With the old tool's script tree (bin/hypervisor_setup/) it runs the
old setup scripts instead, in the old order, each with the hypervisor config
file as its argument. Each step runs once: a marker in <state-dir>/setup records it with
a hash of its settings, and the step runs again when its settings change or
with --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig("setup")
			if err != nil {
				return err
			}
			var steps []setupStep
			if sc := a.opts.scripts(); sc.Legacy {
				steps, err = legacySetupSteps(cfg, sc.Dir)
			} else {
				steps, err = setupSteps(cfg)
			}
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
			if len(steps) > 0 && steps[0].path != "" {
				if _, ok := e.host.(hostScripts); !ok {
					return fmt.Errorf("the %s backend cannot run the old setup scripts on the host; run phoenix setup --backend pve on it", a.opts.backendName())
				}
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
			var err error
			if s.path != "" {
				err = runner.(hostScripts).RunOnHost(ctx, s.path, s.args)
			} else {
				err = runner.RunSetupStep(ctx, s.name, s.settings)
			}
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
