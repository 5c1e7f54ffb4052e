package pve

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// writeScript writes a script under the env's scripts folder.
func (e *env) writeScript(t *testing.T, rel, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(e.scripts, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

func TestHost_Run_lxc(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--start", "1")
	path := e.writeScript(t, "features/docker.sh", "#!/bin/bash\nset -e\necho docker\n", 0o644)
	spec := json.RawMessage(`{"name":"web","unknown_field":{"kept":true}}`)
	s := hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker", Path: path, Spec: spec}
	if err := e.h.Run(ctx, api.KindLXC, 101, s); err != nil {
		t.Fatal(err)
	}
	calls := e.newCalls(t)
	if len(calls) != 3 {
		t.Fatalf("calls = %q; want push, push, exec", calls)
	}
	dest := "/tmp/phoenix-features-docker"
	if want := []string{"pct", "push", "101", path, dest, "--perms", "0600"}; !reflect.DeepEqual(calls[0], want) {
		t.Errorf("push script = %q, want %q", calls[0], want)
	}
	if c := calls[1]; len(c) != 7 || c[1] != "push" || c[4] != dest+".spec.json" || !strings.Contains(c[3], "phoenix-spec-") {
		t.Errorf("push spec = %q", c)
	}
	if want := []string{"pct", "exec", "101", "--keep-env", "0", "--", "/bin/bash", dest, dest + ".spec.json"}; !reflect.DeepEqual(calls[2], want) {
		t.Errorf("exec = %q, want %q", calls[2], want)
	}
	if _, err := os.Stat(calls[1][3]); !os.IsNotExist(err) {
		t.Errorf("spec temp file %s left behind: %v", calls[1][3], err)
	}
	files := e.guestState(t, 101)["files"].(map[string]any)
	if files[dest+".spec.json"] != string(spec) || files[dest] != "#!/bin/bash\nset -e\necho docker\n" {
		t.Errorf("files in the guest = %q", files)
	}
}

func TestHost_Run_failure(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []api.Kind{api.KindLXC, api.KindVM} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t)
			if kind == api.KindLXC {
				e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--start", "1")
			} else {
				e.fake(t, "qm", "create", "101", "--agent", "1", "--start", "1")
			}
			path := e.writeScript(t, "features/nvidia.sh", "echo installing\n", 0o600)
			t.Setenv("FAKEPVE_FAIL_EXEC", "phoenix-features-nvidia")
			err := e.h.Run(ctx, kind, 101, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "nvidia", Path: path})
			if err == nil {
				t.Fatal("no error")
			}
			tool := map[api.Kind]string{api.KindLXC: "`pct exec 101 --keep-env 0 -- sh", api.KindVM: "`qm guest exec 101 --timeout 30 -- sh"}[kind]
			for _, w := range []string{string(kind) + " 101", `features script "nvidia"`, tool, "exited 1", "step 3: failed"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// pct exec's exit code is the script's; qm reports it in JSON.
			var ce *CommandError
			var ee *guest.ExitError
			if !(errors.As(err, &ce) && ce.ExitCode == 1) && !(errors.As(err, &ee) && ee.Code == 1) {
				t.Errorf("want an error with exit code 1: %#v", err)
			}
		})
	}
}

func TestHost_Run_vm(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fake(t, "qm", "create", "200", "--agent", "1", "--start", "1")
	path := e.writeScript(t, "apps/setup app.sh", "#!/usr/bin/env bash\necho hi\n", 0o644)
	spec := json.RawMessage(`{"name":"vm"}`)
	if err := e.h.Run(ctx, api.KindVM, 200, hypervisor.Script{Kind: hypervisor.AppScript, Name: "setup app.sh", Path: path, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	dest := "/tmp/phoenix-apps-setup_app.sh"
	want := [][]string{
		{"qm", "guest", "cmd", "200", "ping"},
		{"qm", "guest", "exec", "200", "--pass-stdin", "1", "--timeout", "30", "--", "install", "-m", "0600", "/dev/stdin", dest},
		{"qm", "guest", "exec", "200", "--pass-stdin", "1", "--timeout", "30", "--", "install", "-m", "0600", "/dev/stdin", dest + ".spec.json"},
		{"qm", "guest", "exec", "200", "--timeout", "30", "--", "/usr/bin/env", "bash", dest, dest + ".spec.json"},
	}
	if got := e.newCalls(t); !reflect.DeepEqual(got, want) {
		t.Errorf("commands:\n got %q\nwant %q", got, want)
	}
	files := e.guestState(t, 200)["files"].(map[string]any)
	if files[dest] != "#!/usr/bin/env bash\necho hi\n" || files[dest+".spec.json"] != string(spec) {
		t.Errorf("files in the guest = %q", files)
	}

	// Without the agent, the error says what is missing.
	e.fake(t, "qm", "set", "200", "--delete", "agent")
	err := e.h.Run(ctx, api.KindVM, 200, hypervisor.Script{Kind: hypervisor.HealthScript, Name: "ping", Command: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "No QEMU guest agent configured") || !strings.Contains(err.Error(), "agent: 1") {
		t.Errorf("err = %v", err)
	}
}

func TestHost_Run_refused(t *testing.T) {
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "evil.sh")
	if err := os.WriteFile(outside, []byte("echo evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		setup   func(t *testing.T, e *env) string // returns the script path
		wantErr string
	}{
		{"group writable", func(t *testing.T, e *env) string {
			return e.writeScript(t, "features/docker.sh", "echo\n", 0o664)
		}, "writable by group or others (mode 0664)"},
		{"world writable folder", func(t *testing.T, e *env) string {
			p := e.writeScript(t, "features/docker.sh", "echo\n", 0o644)
			if err := os.Chmod(filepath.Dir(p), 0o777); err != nil {
				t.Fatal(err)
			}
			return p
		}, "features is writable by group or others"},
		{"dot-dot", func(t *testing.T, e *env) string {
			rel, err := filepath.Rel(e.scripts, outside)
			if err != nil {
				t.Fatal(err)
			}
			return e.scripts + "/" + rel // not cleaned: the .. stay in the path
		}, "outside the scripts folder"},
		{"symlink out", func(t *testing.T, e *env) string {
			p := filepath.Join(e.scripts, "features", "link.sh")
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "outside the scripts folder"},
		{"missing", func(t *testing.T, e *env) string {
			return filepath.Join(e.scripts, "features", "nope.sh")
		}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake(t, "pct", "create", "101", "local:vztmpl/debian.tar.zst", "--start", "1")
			path := tc.setup(t, e)
			err := e.h.Run(ctx, api.KindLXC, 101, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: path})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v; want %q", err, tc.wantErr)
			}
			if calls := e.newCalls(t); len(calls) != 0 {
				t.Errorf("commands run for a refused script: %q", calls)
			}
		})
	}
	t.Run("no scripts folder", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.ScriptsDir = "" })
		err := e.h.Run(ctx, api.KindLXC, 101, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: outside})
		if err == nil || !strings.Contains(err.Error(), "no scripts folder configured") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestHost_RunSetupStep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "got.json")
	t.Setenv("PHOENIX_TEST_OUT", out)
	e.writeScript(t, "setup/zfs.sh", "#!/bin/sh\ncp \"$1\" \"$PHOENIX_TEST_OUT\"\n", 0o755)
	settings := json.RawMessage(`{"pools":[{"name":"tank; rm -rf /"}]}`)
	if err := e.h.RunSetupStep(ctx, "zfs", settings); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(out); err != nil || string(got) != string(settings) {
		t.Errorf("settings seen by the script = %q, %v", got, err)
	}

	e.writeScript(t, "setup/fails.sh", "echo checking\necho 'no pool tank' >&2\nexit 3\n", 0o700)
	err := e.h.RunSetupStep(ctx, "fails", nil)
	for _, w := range []string{`setup step "fails"`, "fails.sh", "exited 3", "checking\nno pool tank"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}

	e.writeScript(t, "setup/open.sh", "true\n", 0o666)
	if err := e.h.RunSetupStep(ctx, "open", nil); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("group-writable setup script: %v", err)
	}
	if err := e.h.RunSetupStep(ctx, "../features/x", nil); err == nil || !strings.Contains(err.Error(), "not a step name") {
		t.Errorf("step with a path: %v", err)
	}
}
