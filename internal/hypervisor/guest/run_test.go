package guest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// recorder is every transport at once; it records what the protocol asks
// of them as one line per call.
type recorder struct {
	calls []string
	files map[string]string
	// fail makes the call whose line starts with it fail.
	fail string
	// pings answer "not running" this many times before the agent is up.
	pings int
	reply func(argv []string) *AgentReply
}

func (r *recorder) record(line string) error {
	r.calls = append(r.calls, line)
	if r.fail != "" && strings.HasPrefix(line, r.fail) {
		return errors.New("transport: boom")
	}
	return nil
}

func (r *recorder) Push(_ context.Context, id api.ID, f File) error {
	data, err := f.Content()
	if err != nil {
		return err
	}
	if err := r.record(fmt.Sprintf("push %s %s %s", id, f.Dest, f.Perms())); err != nil {
		return err
	}
	r.files[f.Dest] = string(data)
	return nil
}

func (r *recorder) Exec(_ context.Context, id api.ID, argv []string) error {
	return r.record(fmt.Sprintf("exec %s %s", id, strings.Join(argv, " ")))
}

type agent struct{ *recorder }

func (a agent) Ping(context.Context, api.ID) error {
	if err := a.record("ping"); err != nil {
		return err
	}
	if a.pings > 0 {
		a.pings--
		return errors.New("500 QEMU guest agent is not running")
	}
	return nil
}

func (a agent) Exec(_ context.Context, id api.ID, argv []string, stdin []byte) (*AgentReply, error) {
	line := fmt.Sprintf("agent %s %s", id, strings.Join(argv, " "))
	if err := a.record(line); err != nil {
		return nil, err
	}
	if stdin != nil {
		a.files[argv[len(argv)-1]] = string(stdin)
	}
	if a.reply != nil {
		if rep := a.reply(argv); rep != nil {
			return rep, nil
		}
	}
	return &AgentReply{Command: strings.Join(argv, " "), Exited: true, ExitCode: new(0)}, nil
}

func (r *recorder) RunScript(_ context.Context, id api.ID, c *Checked, args []string) error {
	return r.record(fmt.Sprintf("node %s %s %s", id, c.Rel, strings.Join(args, " ")))
}

func newRunner(t *testing.T) (*Runner, *recorder, string) {
	root := t.TempDir()
	rec := &recorder{files: map[string]string{}}
	return &Runner{ScriptsDir: root, Container: rec, Agent: agent{rec}, Node: rec,
		AgentWait: time.Minute, AgentPoll: time.Millisecond, MaxAgentInput: 64}, rec, root
}

func TestRunner_Run(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		kind  api.Kind
		setup func(t *testing.T, root string) hypervisor.Script
		calls []string
		files map[string]string
	}{
		{"container script and spec", api.KindLXC, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "features", "docker.sh"), "#!/bin/bash\necho\n", 0o644)
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker", Path: p, Spec: []byte(`{"a":1}`)}
		}, []string{
			"push 101 /tmp/phoenix-features-docker 0600",
			"push 101 /tmp/phoenix-features-docker.spec.json 0600",
			"exec 101 /bin/bash /tmp/phoenix-features-docker /tmp/phoenix-features-docker.spec.json",
		}, map[string]string{"/tmp/phoenix-features-docker": "#!/bin/bash\necho\n", "/tmp/phoenix-features-docker.spec.json": `{"a":1}`}},
		{"VM script through the agent, empty spec", api.KindVM, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "apps", "app.sh"), "echo\n", 0o600)
			return hypervisor.Script{Kind: hypervisor.AppScript, Name: "app.sh", Path: p}
		}, []string{
			"ping",
			"agent 101 install -m 0600 /dev/stdin /tmp/phoenix-apps-app.sh",
			"agent 101 install -m 0600 /dev/stdin /tmp/phoenix-apps-app.sh.spec.json",
			"agent 101 sh /tmp/phoenix-apps-app.sh /tmp/phoenix-apps-app.sh.spec.json",
		}, map[string]string{"/tmp/phoenix-apps-app.sh": "echo\n", "/tmp/phoenix-apps-app.sh.spec.json": "{}"}},
		{"health command", api.KindLXC, func(*testing.T, string) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.HealthScript, Name: "up", Command: []string{"curl", "-fs", "http://x"}}
		}, []string{"exec 101 curl -fs http://x"}, map[string]string{}},
		{"old tool's folder", api.KindLXC, func(t *testing.T, root string) hypervisor.Script {
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
		{"host-side script goes to the node", api.KindLXC, func(t *testing.T, root string) hypervisor.Script {
			p := write(t, filepath.Join(root, "lxc_setup", "install_x.sh"), "echo\n", 0o755)
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: p, OnHost: true, Args: []string{"101", "https://ca"}}
		}, []string{"node 101 lxc_setup/install_x.sh 101 https://ca"}, map[string]string{}},
		{"host-side script of a VM does not wait for its agent", api.KindVM, func(t *testing.T, root string) hypervisor.Script {
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
		kind api.Kind
		// setup returns the script; it may change the recorder.
		setup   func(t *testing.T, root string, rec *recorder) hypervisor.Script
		wantErr string
		calls   []string
	}{
		{"nothing to run", api.KindLXC, func(*testing.T, string, *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x"}
		}, "neither a script path nor a command", nil},
		{"unknown kind", "qemu", func(*testing.T, string, *recorder) hypervisor.Script {
			return hypervisor.Script{Command: []string{"true"}}
		}, `unknown guest kind "qemu"`, nil},
		{"refused script touches nothing", api.KindLXC, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: write(t, filepath.Join(root, "x.sh"), "", 0o666)}
		}, "writable by group or others", nil},
		{"refused host-side script never reaches the node", api.KindLXC, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", OnHost: true, Path: write(t, filepath.Join(root, "x.sh"), "", 0o646)}
		}, "writable by group or others", nil},
		{"bad folder touches nothing", api.KindLXC, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", Dir: "/", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, `folder "/" in the guest`, nil},
		{"missing data file found before the guest is touched", api.KindLXC, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Name: "x", Dir: "/tmp/run", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644),
				Data: []string{filepath.Join(root, "gone.json")}}
		}, "no such file", nil},
		{"failed push stops the run", api.KindLXC, func(t *testing.T, root string, rec *recorder) hypervisor.Script {
			rec.fail = "push 101 /tmp/phoenix-features-x.spec.json"
			return hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "x", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, "copy /tmp/phoenix-features-x.spec.json into the guest: transport: boom",
			[]string{"push 101 /tmp/phoenix-features-x 0600", "push 101 /tmp/phoenix-features-x.spec.json 0600"}},
		{"failed script in a folder still removes it", api.KindLXC, func(t *testing.T, root string, rec *recorder) hypervisor.Script {
			rec.fail = "exec 101 /tmp/run/x.sh"
			return hypervisor.Script{Name: "x", Dir: "/tmp/run", Path: write(t, filepath.Join(root, "x.sh"), "", 0o644)}
		}, "transport: boom",
			[]string{"exec 101 mkdir -p -m 0700 /tmp/run", "push 101 /tmp/run/x.sh 0755", "exec 101 /tmp/run/x.sh", "exec 101 rm -rf -- /tmp/run"}},
		{"too big for the agent", api.KindVM, func(t *testing.T, root string, _ *recorder) hypervisor.Script {
			return hypervisor.Script{Kind: hypervisor.AppScript, Name: "big", Path: write(t, filepath.Join(root, "big.sh"), strings.Repeat("#", 65), 0o644)}
		}, "copy /tmp/phoenix-apps-big into the guest: 65 bytes; the guest agent takes at most 64", []string{"ping"}},
		{"agent reports an exit code", api.KindVM, func(_ *testing.T, _ string, rec *recorder) hypervisor.Script {
			rec.reply = func([]string) *AgentReply {
				return &AgentReply{Command: "curl", Via: "guest agent", Exited: true, ExitCode: new(7), Output: []byte("a\nrefused\n")}
			}
			return hypervisor.Script{Command: []string{"curl"}}
		}, "`curl` (guest agent) exited 7: \na\nrefused", []string{"ping", "agent 101 curl"}},
		{"agent reports a signal", api.KindVM, func(_ *testing.T, _ string, rec *recorder) hypervisor.Script {
			rec.reply = func([]string) *AgentReply { return &AgentReply{Command: "sleep 9", Exited: true, Signal: new(9)} }
			return hypervisor.Script{Command: []string{"sleep", "9"}}
		}, "`sleep 9` was killed by signal 9", []string{"ping", "agent 101 sleep 9"}},
		{"agent stopped waiting", api.KindVM, func(_ *testing.T, _ string, rec *recorder) hypervisor.Script {
			rec.reply = func([]string) *AgentReply { return &AgentReply{Command: "sleep 9", Waited: 30 * time.Second} }
			return hypervisor.Script{Command: []string{"sleep", "9"}}
		}, "`sleep 9`: still running after 30s", []string{"ping", "agent 101 sleep 9"}},
		{"no agent configured fails at once", api.KindVM, func(_ *testing.T, _ string, rec *recorder) hypervisor.Script {
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

func TestRunner_waitsForALateAgent(t *testing.T) {
	ctx := context.Background()
	cmd := hypervisor.Script{Kind: hypervisor.HealthScript, Name: "up", Command: []string{"true"}}

	r, rec, _ := newRunner(t)
	rec.pings = 3
	if err := r.Run(ctx, api.KindVM, 200, cmd); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ping", "ping", "ping", "ping", "agent 200 true"}; !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("calls %q, want %q", rec.calls, want)
	}

	r, rec, _ = newRunner(t)
	r.AgentWait, r.AgentHint = 20*time.Millisecond, ", or raise --wait"
	rec.pings = 1 << 30
	err := r.Run(ctx, api.KindVM, 200, cmd)
	for _, w := range []string{"did not answer within 20ms", "QEMU guest agent is not running", "install qemu-guest-agent", "agent: 1", "or raise --wait"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err %v lacks %q", err, w)
		}
	}
	if n := len(rec.calls); n < 2 || rec.calls[n-1] != "ping" {
		t.Errorf("calls %q: want several pings and no exec", rec.calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	r, rec, _ = newRunner(t)
	rec.pings = 1 << 30
	if err := r.Run(cctx, api.KindVM, 200, cmd); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
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
