package guest

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func TestRunner_Run(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		kind  guestKind
		setup func(t *testing.T, root string) hypervisor.Script
		calls []string
		files map[string]string
	}{
		{"container script and spec", lxc, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "features", "docker.sh"), "#!/bin/bash\necho\n", 0o644)
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker", Path: p, Spec: []byte(`{"a":1}`)}
		}, []string{
			"push 101 /tmp/phoenix-features-docker 0600",
			"push 101 /tmp/phoenix-features-docker.spec.json 0600",
			"exec 101 /bin/bash /tmp/phoenix-features-docker /tmp/phoenix-features-docker.spec.json",
		}, map[string]string{"/tmp/phoenix-features-docker": "#!/bin/bash\necho\n", "/tmp/phoenix-features-docker.spec.json": `{"a":1}`}},
		{"VM script through the agent, empty spec", vm, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "apps", "app.sh"), "echo\n", 0o600)
			return hypervisor.Script{Kind: hypervisor.AppScript, Name: "app.sh", Path: p}
		}, []string{
			"ping",
			"agent 101 install -m 0600 /dev/stdin /tmp/phoenix-apps-app.sh",
			"agent 101 install -m 0600 /dev/stdin /tmp/phoenix-apps-app.sh.spec.json",
			"agent 101 sh /tmp/phoenix-apps-app.sh /tmp/phoenix-apps-app.sh.spec.json",
		}, map[string]string{"/tmp/phoenix-apps-app.sh": "echo\n", "/tmp/phoenix-apps-app.sh.spec.json": "{}"}},
		{"health command", lxc, func(*testing.T, string) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.HealthScript, Name: "up", Command: []string{"curl", "-fs", "http://x"}}
		}, []string{"exec 101 curl -fs http://x"}, map[string]string{}},
		{"old tool's folder", lxc, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "app.sh"), "echo\n", 0o755)
			u := write(t, filepath.Join(root, "utils.sh"), "f() { :; }\n", 0o644)
			d := write(t, filepath.Join(t.TempDir(), "lxc.json"), `{"secret":1}`, 0o600)
			return hypervisor.Script{Kind: hypervisor.AppScript, Name: "app.sh", Path: p, Dir: "/tmp/phoenix_run",
				Beside: []string{u}, Data: []string{d}, Args: []string{"101"}}
		}, []string{
			"exec 101 mkdir -p -m 0700 /tmp/phoenix_run",
			"push 101 /tmp/phoenix_run/app.sh 0755",
			"push 101 /tmp/phoenix_run/utils.sh 0644",
			"push 101 /tmp/phoenix_run/lxc.json 0600",
			"exec 101 /tmp/phoenix_run/app.sh 101",
			"exec 101 rm -rf -- /tmp/phoenix_run",
		}, map[string]string{"/tmp/phoenix_run/app.sh": "echo\n", "/tmp/phoenix_run/utils.sh": "f() { :; }\n", "/tmp/phoenix_run/lxc.json": `{"secret":1}`}},
		{"host-side script goes to the node", lxc, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "lxc_setup", "install_x.sh"), "echo\n", 0o755)
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: p, OnHost: true, Args: []string{"101", "https://ca"}}
		}, []string{"node 101 lxc_setup/install_x.sh 101 https://ca"}, map[string]string{}},
		{"host-side script of a VM does not wait for its agent", vm, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "check.sh"), "echo\n", 0o755)
			return hypervisor.Script{Kind: hypervisor.HealthScript, Name: "check", Path: p, OnHost: true, Args: []string{"101"}}
		}, []string{"node 101 check.sh 101"}, map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, rec, root := newRunner(t)
			if err := r.Run(ctx, tc.kind, 101, tc.setup(t, root)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.calls, tc.calls) {
				t.Errorf("calls:\n got %q\nwant %q", rec.calls, tc.calls)
			}
			if !reflect.DeepEqual(rec.files, tc.files) {
				t.Errorf("files in the guest:\n got %q\nwant %q", rec.files, tc.files)
			}
		})
	}
}

func TestRunner_Run_failures(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		kind guestKind
		// setup returns the script; it may change the recorder.
		setup   func(t *testing.T, root string, rec *recorder) hypervisor.Script
		wantErr string
		calls   []string
	}{
		{"nothing to run", lxc, func(*testing.T, string, *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x"}
		}, "neither a script path nor a command", nil},
		{"unknown kind", "qemu", func(*testing.T, string, *recorder) hypervisor.Script {
			return hypervisor.Script{Command: []string{"true"}}
		}, `unknown guest kind "qemu"`, nil},
		{"refused script touches nothing", lxc, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: write(t, filepath.Join(root, "x.sh"), "", 0o666)}
		}, "writable by group or others", nil},
		{"refused host-side script never reaches the node", lxc, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", OnHost: true, Path: write(t, filepath.Join(root, "x.sh"), "", 0o646)}
		}, "writable by group or others", nil},
		{"bad folder touches nothing", lxc, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", Dir: "/", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, `folder "/" in the guest`, nil},
		{"missing data file found before the guest is touched", lxc, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", Dir: "/tmp/run", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644),
				Data: []string{filepath.Join(root, "gone.json")}}
		}, "no such file", nil},
		{"failed push stops the run", lxc, func(t *testing.T, root string, rec *recorder) hypervisor.Script {
			rec.fail = "push 101 /tmp/phoenix-features-x.spec.json"
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, "copy /tmp/phoenix-features-x.spec.json into the guest: transport: boom",
			[]string{"push 101 /tmp/phoenix-features-x 0600", "push 101 /tmp/phoenix-features-x.spec.json 0600"}},
		{"failed script in a folder still removes it", lxc, func(t *testing.T, root string, rec *recorder) hypervisor.Script {
			rec.fail = "exec 101 /tmp/run/x.sh"
			return hypervisor.Script{Name: "x", Dir: "/tmp/run", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, "transport: boom",
			[]string{"exec 101 mkdir -p -m 0700 /tmp/run", "push 101 /tmp/run/x.sh 0755", "exec 101 /tmp/run/x.sh", "exec 101 rm -rf -- /tmp/run"}},
		{"too big for the agent", vm, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.AppScript, Name: "big", Path: write(t, filepath.Join(root, "big.sh"), strings.Repeat("#", 65), 0o644)}
		}, "copy /tmp/phoenix-apps-big into the guest: 65 bytes; the guest agent takes at most 64", []string{"ping"}},
		{"no agent configured fails at once", vm, func(_ *testing.T, _ string, rec *recorder) hypervisor.Script {
			rec.fail = "ping"
			return hypervisor.Script{Command: []string{"true"}}
		}, "transport: boom", []string{"ping"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, rec, root := newRunner(t)
			err := r.Run(ctx, tc.kind, 101, tc.setup(t, root, rec))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(rec.calls, tc.calls) {
				t.Errorf("calls:\n got %q\nwant %q", rec.calls, tc.calls)
			}
		})
	}
}

func TestTail(t *testing.T) {
	var long strings.Builder
	for i := range 30 {
		fmt.Fprintf(&long, "line %d\n", i)
	}
	for in, want := range map[string]string{
		"":                        "",
		"  one line \n":           "one line",
		"a\nb\n":                  "\na\nb",
		"bad \xff byte":           "bad ? byte",
		long.String():             "\n...line 10\nline 11\nline 12\nline 13\nline 14\nline 15\nline 16\nline 17\nline 18\nline 19\nline 20\nline 21\nline 22\nline 23\nline 24\nline 25\nline 26\nline 27\nline 28\nline 29",
		strings.Repeat("x", 2100): "..." + strings.Repeat("x", 2000),
	} {
		if got := Tail([]byte(in)); got != want {
			t.Errorf("Tail(%.20q) = %q; want %q", in, got, want)
		}
	}
}
