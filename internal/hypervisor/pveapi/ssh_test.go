package pveapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// TestRawWriteScript runs the config writer phoenix sends to a node with
// the local sh, flock and sha256sum, on a config in Proxmox's format: it
// replaces the file only if it is still what phoenix read.
func TestRawWriteScript(t *testing.T) {
	for _, tool := range []string{"sh", "flock", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed; CI must have it", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	const before = "arch: amd64\nhostname: ct100\nlxc.apparmor.profile: generated\n\n[pre]\nmemory: 512\n"
	const after = "arch: amd64\nhostname: ct100\nlxc.apparmor.profile: unconfined\n\n[pre]\nmemory: 512\n"
	sum := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	tests := []struct {
		name    string
		conf    string // "": no config file
		sum     string
		want    string
		wantErr string
		code    int
	}{
		{"unchanged since read: replaced", before, sum(before), after, "", 0},
		{"changed since read: left alone", before + "lock: backup\n", sum(before), before + "lock: backup\n", "changed while phoenix edited it", 75},
		{"missing config", "", sum(before), "", "does not exist", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "100.conf")
			if tt.conf != "" {
				if err := os.WriteFile(conf, []byte(tt.conf), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sh", "-c", rawWriteScript, "phoenix-lxc-write", "100", dir, filepath.Join(dir, "lock"), tt.sum)
			cmd.Stdin = strings.NewReader(after)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d stderr %q; want exit %d with %q", code, stderr.String(), tt.code, tt.wantErr)
			}
			if got, _ := os.ReadFile(conf); string(got) != tt.want {
				t.Errorf("config\n%s\nwant\n%s", got, tt.want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*.phoenix.*")); len(left) > 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

func TestHost_rawKeysRefuseOddKeysBeforeTouchingTheNode(t *testing.T) {
	tc := newTestCluster(t)
	withSSH(t, tc)
	mustCreateLXC(t, tc.host, 100, nil)
	before := tc.fake.Guest(100)
	err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"lxc.ok; rm -rf /": "x"})
	if err == nil || !strings.Contains(err.Error(), `raw LXC key "lxc.ok; rm -rf /"`) {
		t.Errorf("odd key: %v", err)
	}
	if g := tc.fake.Guest(100); !reflect.DeepEqual(g.Raw, before.Raw) || !reflect.DeepEqual(g.Config, before.Config) {
		t.Errorf("config changed: %v %v", g.Config, g.Raw)
	}
}

func TestHost_containerScriptsAndRawKeysOverSSH(t *testing.T) {
	tc := newTestCluster(t)
	scripts := t.TempDir()
	tc.opts.ScriptsDir = scripts
	withSSH(t, tc)
	tc.host.SetPlacement(placement(map[api.ID]string{100: "pve2"}))
	mustCreateLXC(t, tc.host, 100, map[string]string{"hostname": "ct", "lxc.apparmor.profile": "unconfined",
		"lxc.mount.entry": "/a a none bind\n/b b none bind"})
	g, err := tc.host.Get(ctx, api.KindLXC, 100)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config["lxc.apparmor.profile"] != "unconfined" || g.Config["lxc.mount.entry"] != "/a a none bind\n/b b none bind" {
		t.Errorf("raw keys after create: %q", g.Config)
	}
	if err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"lxc.mount.entry": "", "memory": "1024"}); err != nil {
		t.Fatal(err)
	}
	if g := tc.fake.Guest(100); g.RawValue("lxc.mount.entry") != "" || g.Config["memory"] != "1024" {
		t.Errorf("after Set: raw %v config %v", g.Raw, g.Config)
	}

	script := filepath.Join(scripts, "base_setup.sh")
	os.WriteFile(script, []byte("#!/bin/bash -e\necho hi\n"), 0o644)
	s := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "base_setup", Path: script, Spec: []byte(`{"name":"ct"}`)}
	err = tc.host.Run(ctx, api.KindLXC, 100, s)
	if err == nil || !strings.Contains(err.Error(), "lxc 100: features script \"base_setup\" on node pve2: ") || !strings.Contains(err.Error(), "CT 100 not running") {
		t.Fatalf("script in a stopped container: %v", err)
	}
	if err := tc.host.Start(ctx, api.KindLXC, 100); err != nil {
		t.Fatal(err)
	}
	if err := tc.host.Run(ctx, api.KindLXC, 100, s); err != nil {
		t.Fatal(err)
	}
	g2 := tc.fake.Guest(100)
	if string(g2.Files["/tmp/phoenix-features-base_setup"]) != "#!/bin/bash -e\necho hi\n" ||
		string(g2.Files["/tmp/phoenix-features-base_setup.spec.json"]) != `{"name":"ct"}` {
		t.Errorf("files in the guest: %q", g2.Files)
	}
	want := "/bin/bash -e /tmp/phoenix-features-base_setup /tmp/phoenix-features-base_setup.spec.json"
	if len(g2.Execs) != 1 || strings.Join(g2.Execs[0], " ") != want {
		t.Errorf("execs %q, want %q", g2.Execs, want)
	}

	// A failing command: exit code and output tail in the error.
	tc.fake.SetExec(func(node string, vmid int, argv []string, stdin []byte) (string, int) {
		return "curl: (7) Failed to connect\n", 7
	})
	hc := hypervisor.Script{Kind: hypervisor.HealthScript, Name: "health_check", Command: []string{"sh", "-c", "curl -fsS http://localhost:8000/health"}}
	err = tc.host.Run(ctx, api.KindLXC, 100, hc)
	var re *RemoteError
	if !errors.As(err, &re) || re.ExitCode != 7 || re.Node != "pve2" ||
		!strings.Contains(err.Error(), "`pct exec 100 -- sh -c 'curl -fsS http://localhost:8000/health'`: exit 7: curl: (7) Failed to connect") {
		t.Errorf("failing health check: %v", err)
	}
}

func TestHost_containerScriptsWithoutSSHFailClearly(t *testing.T) {
	tc := newTestCluster(t)
	mustCreateLXC(t, tc.host, 100, nil)
	tc.host.Start(ctx, api.KindLXC, 100)
	err := tc.host.Run(ctx, api.KindLXC, 100, hypervisor.Script{Kind: hypervisor.HealthScript, Name: "hc", Command: []string{"true"}})
	if !errors.Is(err, ErrNeedSSH) || !strings.Contains(err.Error(), "running commands in a container for guest 100: the Proxmox API cannot do this") {
		t.Errorf("err %v", err)
	}
	err = tc.host.Create(ctx, api.KindLXC, 101, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "s", Config: map[string]string{"lxc.apparmor.profile": "unconfined"}})
	if !errors.Is(err, ErrNeedSSH) {
		t.Errorf("create with a raw key: %v", err)
	}
	if tc.fake.Guest(101) != nil {
		t.Error("guest created although its raw keys could not be set")
	}
}

func TestHost_unknownHostKeyIsRefused(t *testing.T) {
	tc := newTestCluster(t)
	withSSH(t, tc)
	// Replace the known hosts with keys that do not match.
	other := fakepveapi.New(fakepveapi.Options{})
	defer other.Close()
	eps, err := other.StartSSH(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range eps {
		eps[i].Addr = tc.opts.SSH.Addrs[eps[i].Node]
	}
	os.WriteFile(tc.opts.SSH.KnownHostsFile, []byte(fakepveapi.KnownHosts(eps)), 0o600)
	opts := tc.opts
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	mustCreateLXC(t, h, 100, nil)
	h.Start(ctx, api.KindLXC, 100)
	err = h.Run(ctx, api.KindLXC, 100, hypervisor.Script{Kind: hypervisor.HealthScript, Name: "hc", Command: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Errorf("err %v", err)
	}
	if g := tc.fake.Guest(100); len(g.Execs) != 0 {
		t.Error("command ran on a node whose host key did not match")
	}
}

func TestHost_vmScriptsThroughTheGuestAgent(t *testing.T) {
	scripts := t.TempDir()
	tc := newTestCluster(t, func(_ *fakepveapi.Options, o *Options) { o.ScriptsDir = scripts })
	err := tc.host.Create(ctx, api.KindVM, 200, hypervisor.CreateSpec{Storage: "shared", DiskGB: 10, Config: map[string]string{"agent": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(scripts, "docker.sh")
	os.WriteFile(script, []byte("echo docker\n"), 0o600)
	s := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker", Path: script, Spec: []byte(`{}`)}
	err = tc.host.Run(ctx, api.KindVM, 200, s)
	if err == nil || !strings.Contains(err.Error(), "POST /nodes/pve1/qemu/200/agent/ping: 500 VM 200 is not running") {
		t.Errorf("stopped VM: %v", err)
	}
	tc.host.Start(ctx, api.KindVM, 200)
	if err := tc.host.Run(ctx, api.KindVM, 200, s); err != nil {
		t.Fatal(err)
	}
	g := tc.fake.Guest(200)
	if string(g.Files["/tmp/phoenix-features-docker"]) != "echo docker\n" || len(g.Execs) != 1 ||
		strings.Join(g.Execs[0], " ") != "sh /tmp/phoenix-features-docker /tmp/phoenix-features-docker.spec.json" {
		t.Errorf("files %q execs %q", g.Files, g.Execs)
	}
	tc.fake.SetExec(func(string, int, []string, []byte) (string, int) { return "boom", 3 })
	err = tc.host.Run(ctx, api.KindVM, 200, s)
	if err == nil || !strings.Contains(err.Error(), "(guest agent) exited 3: boom") {
		t.Errorf("failing script: %v", err)
	}
}

// TestHost_vmScriptsWaitForALateGuestAgent: a script waits while the
// agent is not running yet (a cloud image installing it), up to the
// agent timeout, then fails saying how to get an agent.
func TestHost_vmScriptsWaitForALateGuestAgent(t *testing.T) {
	scripts := t.TempDir()
	script := filepath.Join(scripts, "app.sh")
	os.WriteFile(script, []byte("echo app\n"), 0o600)
	s := hypervisor.Script{Kind: hypervisor.AppScript, Name: "app.sh", Path: script, Spec: []byte(`{}`)}
	for _, tt := range []struct {
		name string
		// upAfter is the ping after which the agent answers; 0: never.
		upAfter int
		timeout time.Duration
		wantErr string
	}{
		{"agent answers late", 3, time.Minute, ""},
		{"agent never answers", 0, 30 * time.Millisecond,
			"the guest agent did not answer within 30ms (POST /nodes/pve1/qemu/200/agent/ping: 500 QEMU guest agent is not running): install qemu-guest-agent in the VM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, func(f *fakepveapi.Options, o *Options) {
				f.AgentDelay, o.AgentTimeout, o.ScriptsDir = time.Hour, tt.timeout, scripts
			})
			pinged := 0
			tc.fake.OnRequest(func(method, path string) {
				if strings.HasSuffix(path, "/agent/ping") {
					if pinged++; pinged == tt.upAfter {
						tc.fake.SetAgentDelay(0)
					}
				}
			})
			if err := tc.host.Create(ctx, api.KindVM, 200, hypervisor.CreateSpec{Storage: "shared", DiskGB: 10, Config: map[string]string{"agent": "1"}}); err != nil {
				t.Fatal(err)
			}
			if err := tc.host.Start(ctx, api.KindVM, 200); err != nil {
				t.Fatal(err)
			}
			err := tc.host.Run(ctx, api.KindVM, 200, s)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			pings := requestsTo(tc.fake, "/nodes/pve1/qemu/200/agent/ping")
			if pings < 2 {
				t.Errorf("%d pings; the agent was not waited for", pings)
			}
			if ran := len(tc.fake.Guest(200).Execs); (ran == 1) != (tt.wantErr == "") {
				t.Errorf("script ran %d times", ran)
			}
		})
	}
}

func TestRunSetupStep_onEveryNodeOverSSH(t *testing.T) {
	tc := newTestCluster(t)
	scripts := t.TempDir()
	os.MkdirAll(filepath.Join(scripts, "setup"), 0o755)
	os.WriteFile(filepath.Join(scripts, "setup", "zfs.sh"), []byte("#!/bin/sh\necho zfs\n"), 0o700)
	tc.opts.ScriptsDir = scripts
	withSSH(t, tc)
	if err := tc.host.RunSetupStep(ctx, "zfs", []byte(`{"pools":[]}`)); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.fake.Nodes() {
		files := tc.fake.NodeFiles(n)
		if string(files["/tmp/phoenix-setup-zfs.sh.json"]) != `{"pools":[]}` {
			t.Errorf("node %s files %q", n, files)
		}
		if ex := tc.fake.NodeExecs(n); len(ex) != 1 || strings.Join(ex[0], " ") != "/bin/sh /tmp/phoenix-setup-zfs.sh /tmp/phoenix-setup-zfs.sh.json" {
			t.Errorf("node %s execs %q", n, ex)
		}
	}
	tc.fake.SetNodeDown("pve2", true)
	if err := tc.host.RunSetupStep(ctx, "zfs", nil); err == nil || !strings.Contains(err.Error(), "node pve2 is offline") {
		t.Errorf("with a node down: %v", err)
	}
}

// TestHost_hostSideScriptsRunOnTheGuestsNodeOverSSH: the old tree's
// host-side scripts (LXC feature installers, host health checks) run on
// the node that holds the guest, from the same path under the scripts
// folder, with their arguments exactly as given; a script missing there,
// not executable or open to others is refused before anything runs.
func TestHost_hostSideScriptsRunOnTheGuestsNodeOverSSH(t *testing.T) {
	scripts := filepath.Join(t.TempDir(), "bin")
	const rel = "lxc_setup/phoenix_hypervisor_feature_install_nvidia.sh"
	local := filepath.Join(scripts, rel)
	os.MkdirAll(filepath.Dir(local), 0o755)
	os.WriteFile(local, []byte("#!/bin/bash\npct exec \"$1\" -- nvidia-smi\n"), 0o755)
	remote := scripts + "/" + rel
	hostile := []string{"100", "https://ca.internal/root.crt; rm -rf /", "$(reboot)", "it's", "a\nb", ""}
	s := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "nvidia", Path: local, OnHost: true, Args: hostile}

	tc := newTestCluster(t, func(_ *fakepveapi.Options, o *Options) { o.ScriptsDir = scripts })
	tc.host.SetPlacement(placement(map[api.ID]string{100: "pve2"}))
	mustCreateLXC(t, tc.host, 100, nil)
	err := tc.host.Run(ctx, api.KindLXC, 100, s)
	for _, w := range []string{"lxc 100: features script \"nvidia\" on node pve2", rel + " is a host-side script", "--pve-ssh-key", "--pve-ssh-known-hosts"} {
		if !errors.Is(err, ErrNeedSSH) || !strings.Contains(err.Error(), w) {
			t.Errorf("without SSH: %v; want it to say %q", err, w)
		}
	}

	withSSH(t, tc)
	for _, tt := range []struct {
		name    string
		mode    os.FileMode // 0: not on the node
		wantErr string
	}{
		{"missing on the node", 0, "script " + remote + " does not exist on node pve2; keep the scripts folder " + scripts + " the same on every node"},
		{"not executable", 0o644, "script " + remote + " on node pve2 is not executable (mode 0644)"},
		{"writable by others", 0o757, "script " + remote + " on node pve2 is writable by group or others (mode 0757)"},
		{"runs", 0o755, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != 0 {
				tc.fake.SetNodeFile("pve2", remote, []byte("#!/bin/bash\n"), tt.mode)
			}
			before := len(tc.fake.NodeExecs("pve2"))
			err := tc.host.Run(ctx, api.KindLXC, 100, s)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v; want %q", err, tt.wantErr)
				}
				if n := len(tc.fake.NodeExecs("pve2")); n != before {
					t.Errorf("%d commands ran on the node", n-before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ex := tc.fake.NodeExecs("pve2")
			if want := append([]string{remote}, hostile...); len(ex) != before+1 || !reflect.DeepEqual(ex[before], want) {
				t.Errorf("ran on pve2: %q; want %q", ex[before:], want)
			}
			for _, n := range []string{"pve1", "pve3"} {
				if ex := tc.fake.NodeExecs(n); len(ex) != 0 {
					t.Errorf("ran on %s, which does not hold the guest: %q", n, ex)
				}
			}
		})
	}

	// A failing host-side script: its exit code and output in the error.
	tc.fake.SetExec(func(node string, vmid int, argv []string, stdin []byte) (string, int) {
		return "no GPU on this node\n", 4
	})
	err = tc.host.Run(ctx, api.KindLXC, 100, s)
	var re *RemoteError
	if !errors.As(err, &re) || re.ExitCode != 4 || re.Node != "pve2" || !strings.Contains(err.Error(), "exit 4: no GPU on this node") {
		t.Errorf("failing host-side script: %v", err)
	}
}
