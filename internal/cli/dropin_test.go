package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
)

const upstreamLab = "../../testdata/upstream-2025-11"

// oldHost lays out a host as the old tool left it: <base>/etc holding
// today's upstream files and <base>/bin its script tree, with a stub for
// every script the files name. Host-side stubs append "<script path
// relative to bin> <args>" to hostLog. The bind mounts' host folders and
// the ostemplate's folder are moved under the test's temp folder (phoenix
// creates the first as root, doctor looks for the second), the only change
// to the files.
type oldHost struct {
	base, etc, bin, hostLog string
}

func newOldHost(t *testing.T, src string) *oldHost {
	t.Helper()
	base := t.TempDir()
	o := &oldHost{base: base, etc: filepath.Join(base, "etc"), bin: filepath.Join(base, "bin"), hostLog: filepath.Join(base, "host.log")}
	for _, d := range []string{o.etc, filepath.Join(o.bin, "lxc_setup"), filepath.Join(o.bin, "vm_features"), filepath.Join(o.bin, "health_checks"), filepath.Join(o.bin, "hypervisor_setup")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	mounts := filepath.Join(base, "mnt")
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte(`"host_path": "/mnt/`), []byte(`"host_path": "`+mounts+`/`))
		data = bytes.ReplaceAll(data, []byte(`"template": "/fastData/`), []byte(`"template": "`+base+`/fastData/`))
		if err := os.WriteFile(filepath.Join(o.etc, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := desired.Load(o.etc)
	if err != nil {
		t.Fatal(err)
	}
	o.write(t, "phoenix_hypervisor_common_utils.sh")
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		for _, f := range g.Spec.Features {
			if g.Kind == "lxc" {
				o.write(t, "lxc_setup/phoenix_hypervisor_feature_install_"+f+".sh")
			} else {
				o.write(t, "vm_features/feature_install_"+f+".sh")
			}
		}
		if a := g.Spec.ApplicationScript; a != "" {
			o.write(t, a)
		}
		if hc := g.Spec.HealthCheck; hc != nil {
			o.write(t, strings.TrimPrefix(strings.Fields(hc.Command)[0], "/usr/local/phoenix_hypervisor/bin/"))
		}
	}
	o.write(t, "lxc_setup/phoenix_hypervisor_feature_install_portainer.sh")
	o.write(t, "health_checks/check_nvidia.sh")
	return o
}

// write makes a stub script at bin/rel that logs how it was called.
func (o *oldHost) write(t *testing.T, rel string) {
	t.Helper()
	body := "#!/bin/sh\necho \"" + rel + " $*\" >> '" + o.hostLog + "'\n"
	if err := os.WriteFile(filepath.Join(o.bin, rel), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (o *oldHost) hostCalls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(o.hostLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// run runs phoenix on the fake pct/qm with --config-dir <base>/etc and no
// --scripts-dir.
func (o *oldHost) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--config-dir", o.etc, "--state-dir", filepath.Join(o.base, "state"), "--backend", "pve", "--parallel", "1"}, pveFakeFlags(t)...)
	code := Run(context.Background(), append(full, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// runBackend runs phoenix on another backend with the same folders.
func (o *oldHost) runBackend(t *testing.T, backend string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := []string{"--config-dir", o.etc, "--state-dir", filepath.Join(o.base, "state"), "--backend", backend}
	code := Run(context.Background(), append(full, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

var fakeFlags = map[testing.TB][]string{}

// pveFakeFlags installs the fake pct/qm once per test and returns the
// flags that point the pve backend at its folders.
func pveFakeFlags(t *testing.T) []string {
	if f, ok := fakeFlags[t]; ok {
		return f
	}
	bin, state, logPath := fakepvetest.Install(t)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	f := []string{"--pve-etc", fakepvetest.PVEEtc(state), "--pve-lxc-lock-dir", fakepvetest.LXCLockDir(state),
		"--pve-lock-backoff", "20ms"}
	fakeFlags[t] = f
	fakeLogs[t] = logPath
	t.Cleanup(func() { delete(fakeFlags, t); delete(fakeLogs, t) })
	return f
}

var fakeLogs = map[testing.TB]string{}

func fakeCalls(t *testing.T) []string {
	var out []string
	for _, c := range fakepvetest.ReadLog(t, fakeLogs[t]) {
		out = append(out, c.Tool+" "+strings.Join(c.Argv, " "))
	}
	return out
}

// The upstream files as they are, the old script tree next to them, the
// pve backend: create of a chain runs the old feature scripts on the host
// with the CTID (and bootstrap_ca_url), pushes each application script
// beside the common utilities and the LXC config into /tmp/phoenix_run in
// the container and runs it there with the CTID, runs the old health check
// on the host, and exits 0.
func TestDropIn_createRunsTheOldScriptsTheOldWay(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	code, out, errOut := o.run(t, "create", "102")
	if code != 0 {
		t.Fatalf("create 102: exit %d\n%s\n%s", code, out, errOut)
	}
	host := o.hostCalls(t)
	wantHost := []string{
		"lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh 900",
		"lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh 103",
		"lxc_setup/phoenix_hypervisor_feature_install_step_ca.sh 103",
		"health_checks/check_step_ca.sh ",
		"lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh 102 https://10.0.0.10:9000",
		"lxc_setup/phoenix_hypervisor_feature_install_traefik.sh 102 https://10.0.0.10:9000",
	}
	for _, w := range wantHost {
		if !slices.Contains(host, strings.TrimSpace(w)) && !slices.Contains(host, w) {
			t.Errorf("host did not run %q; ran:\n%s", w, strings.Join(host, "\n"))
		}
	}
	// Order: the feature scripts of a guest in the file's order, the
	// health check after them.
	if i, j := slices.Index(host, wantHost[1]), slices.Index(host, wantHost[2]); i < 0 || j < i {
		t.Errorf("features of 103 out of order:\n%s", strings.Join(host, "\n"))
	}
	calls := fakeCalls(t)
	for _, ct := range []string{"103", "102"} {
		app := "phoenix_hypervisor_lxc_" + ct + ".sh"
		want := []string{
			"pct exec " + ct + " --keep-env 0 -- mkdir -p -m 0700 /tmp/phoenix_run",
			"pct push " + ct + " " + filepath.Join(o.bin, app) + " /tmp/phoenix_run/" + app + " --perms 0755",
			"pct push " + ct + " " + filepath.Join(o.bin, "phoenix_hypervisor_common_utils.sh") + " /tmp/phoenix_run/phoenix_hypervisor_common_utils.sh --perms 0644",
			"pct push " + ct + " " + filepath.Join(o.etc, "phoenix_lxc_configs.json") + " /tmp/phoenix_run/phoenix_lxc_configs.json --perms 0600",
			"pct exec " + ct + " --keep-env 0 -- /tmp/phoenix_run/" + app + " " + ct,
			"pct exec " + ct + " --keep-env 0 -- rm -rf -- /tmp/phoenix_run",
		}
		last := -1
		for _, w := range want {
			i := slices.Index(calls, w)
			if i < 0 {
				t.Errorf("no %q among the pct calls", w)
				continue
			}
			if i < last {
				t.Errorf("%q came before the call it should follow", w)
			}
			last = i
		}
	}
	// The old tree's feature scripts drive the container themselves: none
	// is copied in.
	for _, c := range calls {
		if strings.Contains(c, "lxc_setup/") {
			t.Errorf("a host-side feature script went into a container: %s", c)
		}
	}
	// The bind mounts' host folders exist, and the mpN keys point at them.
	if _, err := os.Stat(filepath.Join(o.base, "mnt/pve/quickOS/lxc-persistent-data/103/ssl")); err != nil {
		t.Errorf("bind mount folder of 103: %v", err)
	}
	var doc struct {
		Guests []struct {
			ID    string `json:"id"`
			Phase string `json:"phase"`
		} `json:"guests"`
	}
	code, out, _ = o.run(t, "status", "102", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
}

// Before any guest is touched, every script the plan will run must be
// there and runnable; otherwise exit 2 naming each script and its guest.
func TestDropIn_preflightNamesEveryMissingScript(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	for _, rel := range []string{"lxc_setup/phoenix_hypervisor_feature_install_traefik.sh", "phoenix_hypervisor_lxc_103.sh"} {
		if err := os.Remove(filepath.Join(o.bin, rel)); err != nil {
			t.Fatal(err)
		}
	}
	// Not executable: the old tool ran its scripts directly.
	if err := os.Chmod(filepath.Join(o.bin, "lxc_setup/phoenix_hypervisor_feature_install_step_ca.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := o.run(t, "create", "102")
	if code != 2 {
		t.Fatalf("create 102 with missing scripts: exit %d, want 2\n%s", code, errOut)
	}
	for _, want := range []string{
		`lxc 102: features script "traefik"`, "phoenix_hypervisor_feature_install_traefik.sh",
		`lxc 103: apps script "phoenix_hypervisor_lxc_103.sh"`,
		`lxc 103: features script "step_ca"`, "not executable",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not name %q:\n%s", want, errOut)
		}
	}
	for _, c := range fakeCalls(t) {
		f := strings.Fields(c)
		if len(f) > 1 && !slices.Contains([]string{"status", "config", "listsnapshot", "list"}, f[1]) {
			t.Errorf("the host was changed before the preflight refused: %s", c)
		}
	}
	if _, err := os.Stat(o.hostLog); err == nil {
		t.Errorf("a host script ran: %v", o.hostCalls(t))
	}
}

// setup runs the old hypervisor_setup scripts in the old order, each with
// the hypervisor config file (the ZFS one in its safe mode), once.
func TestDropIn_setupRunsTheOldSetupScriptsInOrder(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	code, _, errOut := o.run(t, "setup")
	if code != 2 || !strings.Contains(errOut, "hypervisor_setup/hypervisor_initial_setup.sh") {
		t.Fatalf("setup without the setup scripts: exit %d, want 2 naming them\n%s", code, errOut)
	}
	if _, err := os.Stat(o.hostLog); err == nil {
		t.Fatalf("a setup script ran although some were missing: %v", o.hostCalls(t))
	}
	for _, s := range legacySetupScripts {
		o.write(t, "hypervisor_setup/"+s)
	}
	if code, out, errOut := o.run(t, "setup"); code != 0 {
		t.Fatalf("setup: exit %d\n%s\n%s", code, out, errOut)
	}
	hv := filepath.Join(o.etc, "phoenix_hypervisor_config.json")
	var want []string
	for _, s := range legacySetupScripts {
		args := hv
		if s == "hypervisor_feature_setup_zfs.sh" {
			args = "--config " + hv + " --mode safe"
		}
		want = append(want, "hypervisor_setup/"+s+" "+args)
	}
	if got := o.hostCalls(t); !slices.Equal(got, want) {
		t.Errorf("setup ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if code, _, _ := o.run(t, "setup"); code != 0 || len(o.hostCalls(t)) != len(want) {
		t.Errorf("second setup: exit %d, ran again: %d calls", code, len(o.hostCalls(t)))
	}
}
