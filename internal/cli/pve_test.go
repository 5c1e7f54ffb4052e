package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
)

// pveHarness runs the CLI with --backend pve against the fake pct and qm,
// with stub scripts for every feature and application script of the
// config. Not parallel: the fake is configured through the environment.
type pveHarness struct {
	*harness
	logPath, scripts string
	fakeState        string
	logged           int
}

func newPVEHarness(t *testing.T, src string) *pveHarness {
	t.Helper()
	h := newHarness(t, src)
	bin, state, logPath := fakepvetest.Install(t)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	scripts := stubScripts(t, h.cfgDir)
	h.extra = []string{"--backend", "pve", "--scripts-dir", scripts, "--parallel", "1",
		"--pve-etc", fakepvetest.PVEEtc(state), "--pve-lxc-lock-dir", fakepvetest.LXCLockDir(state),
		"--pve-lock-backoff", "20ms",
		// One guest list per run, whatever the speed of the machine, so
		// that the logged commands are the same on every run.
		"--pve-list-ttl", "1h"}
	return &pveHarness{harness: h, logPath: logPath, scripts: scripts, fakeState: state}
}

// stubScripts writes a do-nothing script for every feature and application
// script the config names.
func stubScripts(t *testing.T, cfgDir string) string {
	t.Helper()
	cfg, err := desired.Load(cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "scripts")
	for _, sub := range []string{"features", "apps", "health"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\necho \"$0 $1\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		for _, f := range g.Spec.Features {
			write(filepath.Join(dir, "features", f+".sh"))
		}
		if a := g.Spec.ApplicationScript; a != "" {
			write(filepath.Join(dir, "apps", a))
		}
	}
	return dir
}

// calls returns the argv lines logged since the last call, normalised: the
// scripts folder and temp files become placeholders.
func (p *pveHarness) calls() []string {
	all := fakepvetest.ReadLog(p.t, p.logPath)
	fresh := all[p.logged:]
	p.logged = len(all)
	spec := regexp.MustCompile(`/tmp/phoenix-spec-[^ ]*\.json|/tmp/phoenix-[a-z]+-spec-[^ ]*`)
	var out []string
	for _, c := range fresh {
		parts := []string{c.Tool}
		for _, a := range c.Argv {
			a = strings.ReplaceAll(a, p.scripts, "$SCRIPTS")
			a = spec.ReplaceAllLiteralString(a, "$SPEC")
			if a == "" || strings.ContainsAny(a, " \t\n\"'") {
				a = strconv.Quote(a)
			}
			parts = append(parts, a)
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

// mutating filters out the calls that only read.
func mutating(calls []string) []string {
	var out []string
	for _, c := range calls {
		f := strings.Fields(c)
		if len(f) < 2 {
			continue
		}
		switch f[1] {
		case "status", "config", "listsnapshot", "list":
			continue
		case "guest":
			if f[2] == "cmd" { // the agent ping before VM scripts
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func TestPVE_goldenArgv(t *testing.T) {
	p := newPVEHarness(t, referenceLab)
	step := func(name string, args ...string) {
		t.Helper()
		p.mustRun(args...)
		assertGolden(t, filepath.Join("pve", name+".txt"), strings.Join(p.calls(), "\n")+"\n")
	}
	step("create-941-empty-host", "create", "941")
	step("create-941-provisioned", "create", "941")
	p.mustRun("delete", "921", "--force")
	p.calls()
	step("create-941-without-921", "create", "941")
	step("converge-941", "converge", "941")
	step("stop-941", "stop", "941")
	step("start-941", "start", "941")
	step("restart-941", "restart", "941")
	step("delete-941", "delete", "941")
}

func TestPVE_provisionedCreateOnlyReadsDependencies(t *testing.T) {
	p := newPVEHarness(t, referenceLab)
	p.mustRun("create", "941")
	p.calls()
	p.mustRun("create", "941")
	for _, c := range p.calls() {
		f := strings.Fields(c)
		if f[1] != "list" && f[2] != "941" && f[1] != "status" && f[1] != "config" && f[1] != "listsnapshot" {
			t.Errorf("create 941 on a provisioned host changed a dependency: %s", c)
		}
	}
}

func TestPVE_secondCreateChangesNothingButScripts(t *testing.T) {
	p := newPVEHarness(t, exampleLab)
	p.mustRun("LetsGo")
	p.calls()
	p.mustRun("converge", "941", "954", "8001")
	cfg, err := desired.Load(p.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range mutating(p.calls()) {
		f := strings.Fields(c)
		if f[1] == "push" || f[1] == "exec" || (f[1] == "guest" && f[2] == "exec") {
			continue // features, application scripts and health checks always run
		}
		// A guest that does not start at boot is started to run its
		// features again, and stopped after.
		if id, err := api.ParseID(f[2]); err == nil && (f[1] == "start" || f[1] == "shutdown") && !cfg.Guest(id).StartsAtBoot() {
			continue
		}
		t.Errorf("a second workflow run issued a mutating command: %s", c)
	}
}

func TestPVE_parallelClonesFromOneTemplate(t *testing.T) {
	p := newPVEHarness(t, exampleLab)
	t.Setenv("FAKEPVE_CLONE_HOLD", "150ms")
	code, doc, stderr := p.runJSON("LetsGo", "--parallel", "8", "--pve-lock-retries", "-1")
	if code != 0 || !doc.OK {
		t.Fatalf("LetsGo --parallel 8 with clones holding their source's lock: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "locked") {
		t.Errorf("a lock error surfaced: %s", stderr)
	}
}

// Shell and property-string metacharacters in a value that becomes a pct
// argument are refused when the files load: exit 2 naming guest and field,
// and not one command reaches the host.
func TestPVE_injectionIsRefusedBeforeTheHost(t *testing.T) {
	p := newPVEHarness(t, "../../testdata/small")
	path := filepath.Join(p.cfgDir, "phoenix_lxc_configs.json")
	var doc map[string]map[string]map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	evil := "x; rm -rf / $(reboot) `id` \"q\" 'q'\nnext"
	doc["lxc_configs"]["953"]["pct_options"] = []string{"nesting=1", evil}
	out, _ := json.Marshal(doc)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := p.run("create", "953")
	if code != ExitUsage || !strings.Contains(stderr, "guest 953: field pct_options[1]") {
		t.Errorf("create with a hostile pct option: exit %d, want 2 naming guest 953 and pct_options[1]:\n%s", code, stderr)
	}
	if calls := fakepvetest.ReadLog(t, p.logPath); len(calls) != 0 {
		t.Errorf("%d commands reached the host, want none; first: %v", len(calls), calls[0].Argv)
	}
}

func TestPVE_errorsNameGuestStepAndCommand(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"failed task", map[string]string{"FAKEPVE_FAIL": "pct start"}, []string{"900", "step start", "pct start 900", "exited 255"}},
		{"script failure", map[string]string{"FAKEPVE_FAIL_EXEC": "base_setup"}, []string{"900", "step features", "base_setup", "pct exec 900"}},
		{"timeout", map[string]string{"FAKEPVE_HANG": "pct snapshot"}, []string{"900", "step template-snapshot", "pct snapshot 900", "timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPVEHarness(t, "../../testdata/small")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, stderr := p.run("create", "953", "--pve-timeout", "2s", "-o", "json")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	p := newPVEHarness(t, "../../testdata/small")
	if code, out, stderr := p.run("status", "941", "-o", "json"); code != 0 || !strings.Contains(out, `"state": "absent"`) {
		t.Errorf("status of a missing guest on pve: exit %d\n%s%s", code, out, stderr)
	}
}

func TestPVE_setupRunsHostScriptsOnce(t *testing.T) {
	p := newPVEHarness(t, referenceLab)
	setup := filepath.Join(p.scripts, "setup")
	if err := os.MkdirAll(setup, 0o755); err != nil {
		t.Fatal(err)
	}
	ran := filepath.Join(t.TempDir(), "ran")
	for _, step := range []string{"users", "zfs", "storage", "network", "nfs", "samba", "nvidia", "docker"} {
		script := "#!/bin/sh\necho " + step + " >> " + ran + "\n"
		if err := os.WriteFile(filepath.Join(setup, step+".sh"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.mustRun("setup")
	p.mustRun("setup")
	data, _ := os.ReadFile(ran)
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "users,zfs,storage,network,nfs,samba,nvidia,docker" {
		t.Errorf("setup ran %v, want each step once, in order", got)
	}
	p.mustRun("setup", "--force")
	data, _ = os.ReadFile(ran)
	if n := len(strings.Fields(string(data))); n != 16 {
		t.Errorf("after --force %d step runs, want 16", n)
	}
}

// setVolumeSize changes the size of the first volume of container id in
// the harness's config.
func (p *pveHarness) setVolumeSize(id string, gib int) {
	p.t.Helper()
	path := filepath.Join(p.cfgDir, "phoenix_lxc_configs.json")
	var doc map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		p.t.Fatal(err)
	}
	g := doc["lxc_configs"].(map[string]any)[id].(map[string]any)
	g["volumes"].([]any)[0].(map[string]any)["size_gb"] = gib
	out, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// TestPVE_realHost runs the example lab, with a VM made from a cloud
// image, against a fake that checks every option against the release's
// schema, prints that release's qm disk import line, whose guest agent
// answers only a while after a start and whose resize can fail with exit
// 0, on PVE 9 and on PVE 8.2.
func TestPVE_realHost(t *testing.T) {
	for _, version := range []string{"9.0", "8.2"} {
		t.Run(version, func(t *testing.T) {
			p := newPVEHarness(t, exampleLab)
			t.Setenv("FAKEPVE_VERSION", version)
			t.Setenv("FAKEPVE_AGENT_DELAY", "1s")
			p.extra = append(p.extra, "--pve-agent-wait", "1m")
			p.mustRun("LetsGo")
			conf, err := os.ReadFile(filepath.Join(fakepvetest.PVEEtc(p.fakeState), "qemu-server", "8000.conf"))
			if err != nil || !strings.Contains(string(conf), "scsi0: local-zfs:base-8000-disk-0,") || !strings.Contains(string(conf), "template: 1\n") {
				t.Fatalf("VM 8000 from the cloud image: %v\n%s", err, conf)
			}
			p.calls()

			// A second create mutates nothing.
			p.mustRun("create", "952", "8001")
			for _, c := range mutating(p.calls()) {
				if f := strings.Fields(c); f[1] != "push" && f[1] != "exec" && !(f[1] == "guest" && f[2] == "exec") {
					t.Errorf("second create: %s", c)
				}
			}

			// Growing the mount point to 1 TiB resizes it in place.
			p.setVolumeSize("952", 1024)
			p.mustRun("converge", "952")
			var resized bool
			for _, c := range mutating(p.calls()) {
				switch {
				case c == "pct resize 952 mp0 1024G":
					resized = true
				case strings.HasPrefix(c, "pct set 952") && strings.Contains(c, "--mp0"):
					t.Errorf("the mount point was set again, which allocates a new volume: %s", c)
				}
			}
			lxc, _ := os.ReadFile(filepath.Join(fakepvetest.LXCConfDir(p.fakeState), "952.conf"))
			if !resized || !strings.Contains(string(lxc), "mp0: local-zfs:subvol-952-disk-1,mp=/qdrant/storage,size=1T\n") || strings.Contains(string(lxc), "unused") {
				t.Errorf("resized in place: %v\n%s", resized, lxc)
			}

			// A third converge touches nothing, but for the clone sources
			// that do not start at boot: started to run their features
			// again, stopped after.
			p.mustRun("converge", "952")
			cfg, err := desired.Load(p.cfgDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range mutating(p.calls()) {
				f := strings.Fields(c)
				if id, err := api.ParseID(f[2]); err == nil && (f[1] == "start" || f[1] == "shutdown") && !cfg.Guest(id).StartsAtBoot() {
					continue
				}
				if f[1] != "push" && f[1] != "exec" {
					t.Errorf("third converge: %s", c)
				}
			}

			// A resize that fails with exit 0 fails its step.
			t.Setenv("FAKEPVE_EXIT0_FAIL", "resize")
			p.setVolumeSize("952", 1100)
			code, out, errOut := p.run("converge", "952")
			if code != 1 || !strings.Contains(out+errOut, "the command exited 0 but mp0 is still 1024G") || !strings.Contains(out+errOut, "TASK ERROR") {
				t.Errorf("converge with a failing resize: exit %d\n%s\n%s", code, out, errOut)
			}
			if phase := p.phase(t, "952"); phase == "Ready" {
				t.Errorf("952 is %s after its resize failed", phase)
			}
		})
	}
}
