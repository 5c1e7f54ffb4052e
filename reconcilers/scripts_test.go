package reconcilers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func mkfile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// The old layout is found next to <base>/etc without a flag; --scripts-dir
// wins, and its own layout is told by lxc_setup/.
func TestDetectScripts(t *testing.T) {
	base := t.TempDir()
	mkfile(t, filepath.Join(base, "bin", "lxc_setup", "x.sh"))
	os.MkdirAll(filepath.Join(base, "etc"), 0o755)
	native := t.TempDir()
	tests := []struct {
		config, flag string
		want         Scripts
	}{
		{filepath.Join(base, "etc"), "", Scripts{Dir: filepath.Join(base, "bin"), Legacy: true}},
		{filepath.Join(base, "etc") + "/", "", Scripts{Dir: filepath.Join(base, "bin"), Legacy: true}},
		{filepath.Join(base, "etc"), native, Scripts{Dir: native}},
		{filepath.Join(base, "etc"), filepath.Join(base, "bin"), Scripts{Dir: filepath.Join(base, "bin"), Legacy: true}},
		{base, "", Scripts{}},                         // not an etc folder
		{filepath.Join(native, "etc"), "", Scripts{}}, // no bin/lxc_setup beside it
	}
	for _, tt := range tests {
		if got := DetectScripts(tt.config, tt.flag); got != tt.want {
			t.Errorf("DetectScripts(%q, %q) = %+v, want %+v", tt.config, tt.flag, got, tt.want)
		}
	}
}

// Each script of the old tree runs where and with what the old managers
// gave it.
func TestLegacyScripts(t *testing.T) {
	cfg := load(t, "../testdata/upstream-2025-11")
	bin := t.TempDir()
	sc := Scripts{Dir: bin, Legacy: true}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		for _, f := range g.Spec.Features {
			if g.Kind == api.KindLXC {
				mkfile(t, filepath.Join(bin, "lxc_setup", "phoenix_hypervisor_feature_install_"+f+".sh"))
			} else {
				mkfile(t, filepath.Join(bin, "vm_features", "feature_install_"+f+".sh"))
			}
		}
		if a := g.Spec.ApplicationScript; a != "" {
			mkfile(t, filepath.Join(bin, a))
		}
	}
	mkfile(t, filepath.Join(bin, "lxc_setup", "phoenix_hypervisor_feature_install_portainer.sh"))
	mkfile(t, filepath.Join(bin, "health_checks", "check_step_ca.sh"))
	mkfile(t, filepath.Join(bin, "health_checks", "check_nvidia.sh"))
	mkfile(t, filepath.Join(bin, legacyCommonUtils))

	// 102: host-side features with the CTID and bootstrap_ca_url.
	feats, err := sc.Features(cfg, cfg.Guest(102))
	if err != nil {
		t.Fatal(err)
	}
	if len(feats) != 4 || !feats[3].OnHost || feats[3].Path != filepath.Join(bin, "lxc_setup/phoenix_hypervisor_feature_install_traefik.sh") ||
		!slices.Equal(feats[3].Args, []string{"102", "https://10.0.0.10:9000"}) {
		t.Errorf("features of 102 = %+v", feats)
	}
	// 101: portainer_role infrastructure adds the portainer installer, CTID only.
	feats, _ = sc.Features(cfg, cfg.Guest(101))
	if last := feats[len(feats)-1]; last.Name != "portainer" || !last.OnHost || !slices.Equal(last.Args, []string{"101"}) {
		t.Errorf("last feature of 101 = %+v, want the portainer installer", last)
	}
	// 1001: VM features run in the VM from /tmp/phoenix_run with the VMID.
	feats, _ = sc.Features(cfg, cfg.Guest(1001))
	if f := feats[0]; f.OnHost || f.Dir != LegacyRunDir || !slices.Equal(f.Args, []string{"1001"}) ||
		!slices.Equal(f.Beside, []string{filepath.Join(bin, legacyCommonUtils)}) || !slices.Contains(f.Data, cfg.VMPath) {
		t.Errorf("VM feature = %+v", f)
	}
	// 103: the application script beside the common utilities and the LXC
	// config; the health check of the old tree on the host.
	app, err := sc.App(cfg, cfg.Guest(103))
	if err != nil || app.Dir != LegacyRunDir || app.OnHost || !slices.Equal(app.Args, []string{"103"}) || !slices.Contains(app.Data, cfg.LXCPath) {
		t.Errorf("app of 103 = %+v, %v", app, err)
	}
	checks, err := sc.Health(cfg.Guest(103))
	if err != nil || len(checks) != 1 || !checks[0].Script.OnHost || checks[0].Retries != 5 || checks[0].Interval != 10 ||
		checks[0].Script.Path != filepath.Join(bin, "health_checks/check_step_ca.sh") {
		t.Errorf("health of 103 = %+v, %v", checks, err)
	}
	// The nvidia feature brings the old nvidia check, on the host.
	checks, _ = sc.Health(cfg.Guest(901))
	if len(checks) != 1 || checks[0].Script.Name != "check_nvidia.sh" || !slices.Equal(checks[0].Script.Args, []string{"901"}) {
		t.Errorf("health of 901 = %+v", checks)
	}
	if errs := sc.Needed(cfg, cfg.Guest(102)); len(errs) != 0 {
		t.Errorf("Needed(102) = %v, want nothing missing", errs)
	}
}

// The preflight names every script a guest's workflow would run that is
// missing, not executable (the old tree's scripts are run directly) or
// writable by others (phoenix runs them as root), before any guest is
// touched; without a scripts folder there is nothing to check.
func TestScripts_neededPreflight(t *testing.T) {
	cfg := load(t, "../testdata/upstream-2025-11")
	bin := t.TempDir()
	sc := Scripts{Dir: bin, Legacy: true}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		for _, f := range g.Spec.Features {
			if g.Kind == api.KindLXC {
				mkfile(t, filepath.Join(bin, "lxc_setup", "phoenix_hypervisor_feature_install_"+f+".sh"))
			} else {
				mkfile(t, filepath.Join(bin, "vm_features", "feature_install_"+f+".sh"))
			}
		}
		if a := g.Spec.ApplicationScript; a != "" {
			mkfile(t, filepath.Join(bin, a))
		}
	}
	mkfile(t, filepath.Join(bin, "health_checks", "check_step_ca.sh"))
	mkfile(t, filepath.Join(bin, legacyCommonUtils))
	g := cfg.Guest(103)
	if errs := sc.Needed(cfg, g); len(errs) != 0 {
		t.Fatalf("Needed(103) = %v with every script in place", errs)
	}
	app := filepath.Join(bin, g.Spec.ApplicationScript)
	check := filepath.Join(bin, "health_checks", "check_step_ca.sh")
	for _, tt := range []struct {
		name string
		path string
		mode os.FileMode
		want string
	}{
		{"app script writable by others", app, 0o757, "writable by group or others"},
		{"app script not executable", app, 0o644, "not executable"},
		{"health check writable by group", check, 0o775, "writable by group or others"},
		{"beside file writable", filepath.Join(bin, legacyCommonUtils), 0o777, "writable by group or others"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Chmod(tt.path, tt.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(tt.path, 0o755)
			errs := sc.Needed(cfg, g)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) || !strings.Contains(errs[0].Error(), tt.path) {
				t.Errorf("Needed(103) = %v; want one error naming %s: %s", errs, tt.path, tt.want)
			}
		})
	}
	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	if errs := sc.Needed(cfg, g); len(errs) != 1 || !strings.Contains(errs[0].Error(), g.Spec.ApplicationScript) {
		t.Errorf("Needed(103) without its app script = %v", errs)
	}
	if errs := (Scripts{}).Needed(cfg, g); len(errs) != 0 {
		t.Errorf("Needed without a scripts folder = %v", errs)
	}
}
