package reconcilers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// Scripts finds the scripts a guest's workflow runs in a scripts folder.
// Two layouts are known. phoenix's own: features/<feature>.sh, apps/<script>,
// health/<script>, each run inside the guest with the spec's path. The old
// bash tool's (Legacy), which is its bin/ folder: lxc_setup/,
// vm_features/, health_checks/, hypervisor_setup/ and the application
// scripts at the top, each run the way the old managers ran it.
type Scripts struct {
	// Dir is the scripts folder; empty means none is configured, and scripts
	// are passed by name only (the sim backend records them).
	Dir string
	// Legacy says Dir is in the old tool's layout.
	Legacy bool
}

// The old layout's fixed names.
const (
	// LegacyRunDir is the folder in the container the old tool copied an
	// application script and the files it sources into.
	LegacyRunDir      = "/tmp/phoenix_run"
	legacyCommonUtils = "phoenix_hypervisor_common_utils.sh"
	legacyLXCFeatures = "lxc_setup"
	legacyVMFeatures  = "vm_features"
	legacyHealth      = "health_checks"
	// LegacySetup is the folder of the old host setup scripts.
	LegacySetup = "hypervisor_setup"
	// legacyInstall is where the old tool lived; health check commands in
	// its files name scripts by their path there.
	legacyInstall = "/usr/local/phoenix_hypervisor/bin/"
)

// DetectScripts picks the scripts folder: --scripts-dir when given (its
// layout told by whether it has lxc_setup/), else, when the config folder
// is <base>/etc and <base>/bin holds the old layout, <base>/bin.
func DetectScripts(configDir, scriptsDir string) Scripts {
	if scriptsDir != "" {
		return Scripts{Dir: scriptsDir, Legacy: isDir(filepath.Join(scriptsDir, legacyLXCFeatures))}
	}
	if configDir == "" {
		return Scripts{}
	}
	abs, err := filepath.Abs(configDir)
	if err != nil || filepath.Base(abs) != "etc" {
		return Scripts{}
	}
	bin := filepath.Join(filepath.Dir(abs), "bin")
	if isDir(filepath.Join(bin, legacyLXCFeatures)) {
		return Scripts{Dir: bin, Legacy: true}
	}
	return Scripts{}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Resolve returns the host path of a script of phoenix's own layout,
// refusing names that would leave its folder (also through a symlink) and
// scripts that do not exist.
func (s Scripts) Resolve(kind hypervisor.ScriptKind, name string) (string, error) {
	if s.Dir == "" {
		return "", nil
	}
	file := name
	if kind == hypervisor.FeatureScript {
		file = name + ".sh"
	}
	return s.resolveIn(kind, name, string(kind), file)
}

// resolveIn resolves file inside Dir/folder.
func (s Scripts) resolveIn(kind hypervisor.ScriptKind, name, folder, file string) (string, error) {
	if !filepath.IsLocal(file) {
		return "", fmt.Errorf("%s script %q leaves the %s folder", kind, name, folder)
	}
	dir := filepath.Join(s.Dir, folder)
	path := filepath.Join(dir, file)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", &MissingScriptError{Kind: kind, Name: name, Path: path}
		}
		return "", fmt.Errorf("%s script %q: %w", kind, name, err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%s script %q: %w", kind, name, err)
	}
	rel, err := filepath.Rel(realDir, real)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s script %q resolves to %s, outside %s", kind, name, real, realDir)
	}
	return real, nil
}

// MissingScriptError is a script the workflow needs that is not there.
type MissingScriptError struct {
	Kind hypervisor.ScriptKind
	Name string
	Path string
}

func (e *MissingScriptError) Error() string {
	return fmt.Sprintf("%s script %q: no file %s", e.Kind, e.Name, e.Path)
}

// Features are the feature scripts of g, in order. In the old layout a
// container's run on the host with its CTID (and bootstrap_ca_url), then
// the portainer installer when portainer_role is set; a VM's run inside it
// from a folder holding the common utilities and the config files.
func (s Scripts) Features(cfg *api.Config, g *api.Guest) ([]hypervisor.Script, error) {
	var out []hypervisor.Script
	var errs []error
	add := func(sc hypervisor.Script, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		out = append(out, sc)
	}
	for _, f := range g.Spec.Features {
		add(s.feature(cfg, g, f))
	}
	if s.Legacy && g.Kind == api.KindLXC {
		if r := g.Spec.PortainerRole; r != "" && r != "none" {
			add(s.feature(cfg, g, "portainer"))
		}
	}
	return out, errors.Join(errs...)
}

func (s Scripts) feature(cfg *api.Config, g *api.Guest, name string) (hypervisor.Script, error) {
	sc := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: name, Spec: g.Raw}
	var err error
	switch {
	case !s.Legacy:
		sc.Path, err = s.Resolve(hypervisor.FeatureScript, name)
	case g.Kind == api.KindLXC:
		sc.Path, err = s.resolveIn(hypervisor.FeatureScript, name, legacyLXCFeatures, "phoenix_hypervisor_feature_install_"+name+".sh")
		sc.OnHost = true
		sc.Args = []string{g.ID.String()}
		if u := g.Spec.BootstrapCAURL; u != "" && name != "portainer" {
			sc.Args = append(sc.Args, u)
		}
	default:
		sc.Path, err = s.resolveIn(hypervisor.FeatureScript, name, legacyVMFeatures, "feature_install_"+name+".sh")
		sc.Dir, sc.Args = LegacyRunDir, []string{g.ID.String()}
		sc.Beside, sc.Data = s.beside(cfg)
	}
	return sc, err
}

// beside is what the old tool copied next to a script run in a guest.
func (s Scripts) beside(cfg *api.Config) (scripts, data []string) {
	scripts = []string{filepath.Join(s.Dir, legacyCommonUtils)}
	if cfg != nil {
		for _, p := range []string{cfg.LXCPath, cfg.VMPath, cfg.HypervisorPath} {
			if p != "" {
				data = append(data, p)
			}
		}
	}
	return scripts, data
}

// App is g's application script, or nil. In the old layout it is pushed
// into LegacyRunDir in the container with the common utilities and the
// config files, and run there with the CTID.
func (s Scripts) App(cfg *api.Config, g *api.Guest) (*hypervisor.Script, error) {
	name := g.Spec.ApplicationScript
	if name == "" {
		return nil, nil
	}
	sc := &hypervisor.Script{Kind: hypervisor.AppScript, Name: name, Spec: g.Raw}
	var err error
	if !s.Legacy {
		sc.Path, err = s.Resolve(hypervisor.AppScript, name)
		return sc, err
	}
	sc.Path, err = s.resolveIn(hypervisor.AppScript, name, ".", name)
	sc.Dir, sc.Args = LegacyRunDir, []string{g.ID.String()}
	sc.Beside, sc.Data = s.beside(cfg)
	return sc, err
}

// Check is one health check of a guest, with its retries.
type Check struct {
	Script   hypervisor.Script
	Retries  int
	Interval int // seconds
}

// Health lists g's health checks. A health_check command naming a script
// of the old tree runs on the host, with the rest of the command as its
// arguments; any other command runs in the guest. In the old layout a
// guest with the nvidia feature also gets the old nvidia check.
func (s Scripts) Health(g *api.Guest) ([]Check, error) {
	var out []Check
	if s.Legacy && g.Kind == api.KindLXC {
		for _, f := range g.Spec.Features {
			if f != "nvidia" {
				continue
			}
			p, err := s.resolveIn(hypervisor.HealthScript, "check_nvidia.sh", legacyHealth, "check_nvidia.sh")
			if err != nil {
				return nil, err
			}
			out = append(out, Check{Script: hypervisor.Script{Kind: hypervisor.HealthScript, Name: "check_nvidia.sh",
				Path: p, OnHost: true, Args: []string{g.ID.String()}, Spec: g.Raw}})
		}
	}
	hc := g.Spec.HealthCheck
	if hc == nil || hc.Command == "" {
		return out, nil
	}
	c := Check{Retries: hc.Retries, Interval: hc.Interval,
		Script: hypervisor.Script{Kind: hypervisor.HealthScript, Name: "health_check", Command: []string{"sh", "-c", hc.Command}, Spec: g.Raw}}
	if rel, args, ok := s.treeScript(hc.Command); ok {
		p, err := s.resolveIn(hypervisor.HealthScript, rel, ".", rel)
		if err != nil {
			return nil, err
		}
		c.Script = hypervisor.Script{Kind: hypervisor.HealthScript, Name: rel, Path: p, OnHost: true, Args: args, Spec: g.Raw}
	}
	return append(out, c), nil
}

// treeScript reports whether a health check command names a script of the
// old tree: by its path in the old install folder, inside Dir, or relative
// to Dir. It returns the script's path relative to Dir and the other words
// of the command.
func (s Scripts) treeScript(command string) (string, []string, bool) {
	if !s.Legacy {
		return "", nil, false
	}
	f := strings.Fields(command)
	if len(f) == 0 {
		return "", nil, false
	}
	first := f[0]
	var rel string
	switch {
	case strings.HasPrefix(first, legacyInstall):
		rel = strings.TrimPrefix(first, legacyInstall)
	case filepath.IsAbs(first):
		r, err := filepath.Rel(s.Dir, first)
		if err != nil {
			return "", nil, false
		}
		rel = r
	default:
		rel = first
	}
	if !filepath.IsLocal(rel) || !strings.HasSuffix(rel, ".sh") {
		return "", nil, false
	}
	return rel, f[1:], true
}

// Needed lists every script g's create workflow will run, with an error for
// each one that is missing or not runnable: the preflight, so that no
// guest is touched when a script of the plan is not there.
func (s Scripts) Needed(cfg *api.Config, g *api.Guest) []error {
	if s.Dir == "" {
		return nil
	}
	var errs []error
	var all []hypervisor.Script
	feats, err := s.Features(cfg, g)
	all = append(all, feats...)
	if err != nil {
		errs = append(errs, unjoin(err)...)
	}
	app, err := s.App(cfg, g)
	if err != nil {
		errs = append(errs, err)
	} else if app != nil {
		all = append(all, *app)
	}
	checks, err := s.Health(g)
	if err != nil {
		errs = append(errs, err)
	}
	for _, c := range checks {
		all = append(all, c.Script)
	}
	for _, sc := range all {
		for _, p := range append([]string{sc.Path}, sc.Beside...) {
			if p == "" {
				continue
			}
			if err := runnable(p, s.Legacy); err != nil {
				errs = append(errs, fmt.Errorf("%s script %q: %w", sc.Kind, sc.Name, err))
			}
		}
	}
	return errs
}

// runnable checks that a script exists and may be run as root. The old
// tool's scripts are run directly, as it did, so they must be executable;
// phoenix's own are run through their #! interpreter and need not be.
func runnable(p string, direct bool) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no file %s", p)
		}
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	if direct && st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (chmod +x %s)", p, p)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (chmod go-w %s)", p, p)
	}
	return nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
