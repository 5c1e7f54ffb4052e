package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// legacyConfigDir is where the old bash tool kept its files.
const legacyConfigDir = "/usr/local/phoenix_hypervisor/etc"

// options are the flags every verb shares.
type options struct {
	ConfigDir   string
	StateDir    string
	ScriptsDir  string
	Backend     string
	pveAPI      pveAPIFlags
	SimLatency  time.Duration
	SimFailRate float64
	SimSeed     uint64
	Output      string
	Parallel    int
	DryRun      bool
	NoColor     bool
	pve         pveFlags
	// readOnly is set for verbs that must write nothing (status,
	// --dry-run): the state dir is checked, never created.
	readOnly bool
	// Strict turns load warnings into errors.
	Strict bool
	// WaitLock is how long a verb that changes guests waits for a running
	// controller to release the state dir (see handoff.go).
	WaitLock time.Duration
}

func (o *options) bindFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.ConfigDir, "config-dir", envOr("PHOENIX_CONFIG_DIR", defaultConfigDir()), "folder holding the phoenix_*.json files (env PHOENIX_CONFIG_DIR)")
	f.StringVar(&o.StateDir, "state-dir", envOr("PHOENIX_STATE_DIR", defaultStateDir()), "folder for status files, locks and the simulated host (env PHOENIX_STATE_DIR)")
	f.StringVar(&o.ScriptsDir, "scripts-dir", os.Getenv("PHOENIX_SCRIPTS_DIR"), "folder with features/, apps/, health/ scripts, or the old tool's bin/ (default: <base>/bin when --config-dir is <base>/etc and it has lxc_setup/) (env PHOENIX_SCRIPTS_DIR)")
	f.StringVar(&o.Backend, "backend", envOr("PHOENIX_BACKEND", "auto"), "hypervisor backend: auto, sim, pve or pve-api (env PHOENIX_BACKEND)")
	o.pveAPI.bindFlags(f)
	f.DurationVar(&o.SimLatency, "sim-latency", envDuration("PHOENIX_SIM_LATENCY"), "sim: delay added to every host operation (env PHOENIX_SIM_LATENCY)")
	f.Float64Var(&o.SimFailRate, "sim-fail-rate", envFloat("PHOENIX_SIM_FAIL_RATE"), "sim: probability that a host operation fails (env PHOENIX_SIM_FAIL_RATE)")
	f.Uint64Var(&o.SimSeed, "sim-seed", envUint("PHOENIX_SIM_SEED"), "sim: seed for injected failures (env PHOENIX_SIM_SEED)")
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&o.NoColor, "no-color", false, "never colour the output (colour is on only on a terminal, and off when NO_COLOR is set)")
	f.IntVar(&o.Parallel, "parallel", 4, "how many actions may run at once (1 = the old strictly serial order)")
	o.pve.bindFlags(f)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}

func envFloat(key string) float64 {
	f, _ := strconv.ParseFloat(os.Getenv(key), 64)
	return f
}

func envUint(key string) uint64 {
	u, _ := strconv.ParseUint(os.Getenv(key), 10, 64)
	return u
}

func defaultConfigDir() string {
	if fi, err := os.Stat(legacyConfigDir); err == nil && fi.IsDir() {
		return legacyConfigDir
	}
	return "."
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/phoenix"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "phoenix")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "phoenix")
}

func (o *options) validate() error {
	switch o.Output {
	case "text", "json":
	default:
		return usageErr("--output %q: want text or json", o.Output)
	}
	if o.Parallel < 1 {
		return usageErr("--parallel %d: want 1 or more", o.Parallel)
	}
	if o.SimFailRate < 0 || o.SimFailRate > 1 {
		return usageErr("--sim-fail-rate %v: want a probability from 0 to 1", o.SimFailRate)
	}
	// A host running the old tool has its scripts in <base>/bin next to
	// <base>/etc: use them without a flag; --scripts-dir still wins.
	o.ScriptsDir = o.scripts().Dir
	return nil
}

// scripts is the scripts folder and its layout.
func (o *options) scripts() reconcilers.Scripts {
	return reconcilers.DetectScripts(o.ConfigDir, o.ScriptsDir)
}

// env is everything a verb works with, built from the options.
type env struct {
	cfg      *api.Config
	host     hypervisor.Host
	status   *status.Store
	flows    *reconcilers.Workflows
	stateDir string
}

// stateDirReady creates the state dir with owner-only permissions, or for
// a read-only verb only checks it. Either way a state dir another user
// could turn against phoenix (a symlink, someone else's, writable by group
// or others) is refused as a usage error.
func (o *options) stateDirReady() error {
	check := fsutil.MkdirPrivate
	if o.readOnly || o.DryRun {
		check = fsutil.CheckDir
	}
	if err := check(o.StateDir); err != nil {
		if errors.Is(err, fsutil.ErrUnsafe) {
			return &exitError{code: ExitUsage, err: err}
		}
		return fmt.Errorf("state dir: %w", err)
	}
	return nil
}

// backendName resolves "auto": pve on a Proxmox host, else sim.
func (o *options) backendName() string {
	if o.Backend != "auto" && o.Backend != "" {
		return o.Backend
	}
	if _, err := os.Stat("/etc/pve"); err == nil {
		if _, err := exec.LookPath("pct"); err == nil {
			return "pve"
		}
	}
	return "sim"
}

// newHost builds the chosen backend. notice gets the one-line note that
// the simulated host is in use when that was not asked for.
func (o *options) newHost(notice io.Writer) (hypervisor.Host, error) {
	name := o.backendName()
	switch name {
	case "sim":
		dir := filepath.Join(o.StateDir, "sim")
		if o.Backend == "auto" || o.Backend == "" {
			fmt.Fprintf(notice, "phoenix: no Proxmox host here (no /etc/pve or pct); using the simulated host in %s\n", dir)
		}
		sopts := sim.Options{Dir: dir, Latency: o.SimLatency, FailRate: o.SimFailRate, Seed: o.SimSeed}
		// A read-only verb creates, writes and locks nothing, so it works
		// on a state dir it may not write; no simulated node yet is an
		// empty one.
		sopts.ReadOnly = o.readOnly || o.DryRun
		return sim.New(sopts)
	case "pve":
		return newPVE(o, notice)
	case "pve-api":
		return newPVEAPI(o, notice)
	default:
		return nil, usageErr("--backend %q: want auto, sim, pve or pve-api", o.Backend)
	}
}

// intents returns the intent records of the state dir for a verb that may
// change guests, so that a backend can tell the create and clone locks of
// an interrupted phoenix from anyone else's; nil for a read-only verb,
// which never clears a lock.
func (o *options) intents() (*lock.Intents, error) {
	if o.readOnly || o.DryRun {
		return nil, nil
	}
	return lock.NewIntents(filepath.Join(o.StateDir, "locks"))
}

// noticer prints what a backend did on its own (a cleared lock) to w.
func noticer(w io.Writer) func(string) {
	return func(msg string) { fmt.Fprintf(w, "phoenix: %s\n", msg) }
}
