package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/cli"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
)

// runCLI runs phoenix in-process on the lab, with the sim backend.
func (l *lab) runCLI(args ...string) (int, string, string) {
	l.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--config-dir", l.cfgDir, "--state-dir", l.stateDir, "--backend", "sim"}, args...)
	code := cli.Run(context.Background(), full, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliController is `phoenix controller` run through cli.Run.
type cliController struct {
	stderr *syncBuffer
	cancel context.CancelFunc
	code   chan int
}

func (l *lab) startCLIController(args ...string) *cliController {
	l.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &cliController{stderr: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	full := append([]string{"--config-dir", l.cfgDir, "--state-dir", l.stateDir, "--backend", "sim",
		"controller", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--debounce", "50ms"}, args...)
	go func() {
		var out bytes.Buffer
		c.code <- cli.Run(ctx, full, &out, c.stderr)
	}()
	l.t.Cleanup(func() { c.stop() })
	waitFor(l.t, "the controller's first full sync", func() (bool, string) {
		select {
		case code := <-c.code:
			l.t.Fatalf("phoenix controller exited %d:\n%s", code, c.stderr)
		default:
		}
		return strings.Contains(c.stderr.String(), "First full sync done"), ""
	})
	return c
}

// stop sends the equivalent of SIGTERM and returns the exit code.
func (c *cliController) stop() int {
	c.cancel()
	select {
	case code, ok := <-c.code:
		if ok {
			close(c.code)
			return code
		}
		return -1
	case <-time.After(60 * time.Second):
		panic("phoenix controller did not stop")
	}
}

func appliedAt(l *lab) map[api.ID]time.Time {
	out := map[api.ID]time.Time{}
	for _, id := range exampleIDs {
		if st := l.status(id); st.LastAppliedAt != nil {
			out[id] = *st.LastAppliedAt
		}
	}
	return out
}

func TestCLI_convergeHandsOffToController(t *testing.T) {
	l := newLab(t)
	ctl := l.startCLIController()
	before := appliedAt(l)
	lxcBefore, vmBefore := l.read(api.LXCFile), l.read(api.VMFile)

	code, out, errOut := l.runCLI("converge", "941")
	if code != 0 {
		t.Fatalf("converge 941: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "handed off to the phoenix controller (pid "+strconv.Itoa(os.Getpid())+")") ||
		!strings.Contains(out, "converge 941: Ready") {
		t.Errorf("converge output:\n%s", out)
	}
	token := l.status(941).LastHandledConvergeAt
	if _, err := time.Parse(time.RFC3339Nano, token); err != nil {
		t.Fatalf("recorded token %q: %v", token, err)
	}
	for _, id := range chain941 {
		if !l.status(id).LastAppliedAt.After(before[id]) {
			t.Errorf("chain member %s was not re-applied", id)
		}
	}
	if !l.status(902).LastAppliedAt.Equal(before[902]) {
		t.Error("902, outside the chain, was re-applied")
	}
	assertOnlyInsertion(t, lxcBefore, l.read(api.LXCFile), token)
	if !bytes.Equal(vmBefore, l.read(api.VMFile)) {
		t.Error("the VM file changed")
	}

	// A VM, with -o json: stdout is the result document alone.
	code, out, errOut = l.runCLI("converge", "8001", "-o", "json")
	if code != 0 {
		t.Fatalf("converge 8001 -o json: exit %d\n%s\n%s", code, out, errOut)
	}
	var doc plan.ResultDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.OK {
		t.Fatalf("json result %v: %s", err, out)
	}
	validateResult(t, out)
	// The whole chain, as a run without the controller reports it: every
	// action, each with the steps the controller ran.
	var got []string
	for _, a := range doc.Actions {
		got = append(got, a.ID+":"+a.Reason+":"+a.Result)
		if len(a.Steps) == 0 || a.DurationMS > doc.CriticalPathMS {
			t.Errorf("action %s: %d steps, %dms, critical path %dms", a.ID, len(a.Steps), a.DurationMS, doc.CriticalPathMS)
		}
	}
	cfg, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range cfg.Closure([]api.ID{8001}, nil) {
		reason := "converge"
		if id == 8001 {
			reason = "target"
		}
		want = append(want, id.String()+":"+reason+":ok")
	}
	if len(want) < 2 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("hand-off actions %v, want %v", got, want)
	}
	assertOnlyInsertion(t, vmBefore, l.read(api.VMFile), l.status(8001).LastHandledConvergeAt)

	// --no-wait returns at once; the controller still does the work.
	code, out, _ = l.runCLI("converge", "956", "--no-wait")
	if code != 0 || !strings.Contains(out, "not waiting") {
		t.Fatalf("converge --no-wait: exit %d\n%s", code, out)
	}
	waitFor(t, "956's converge", func() (bool, string) {
		st := l.status(956)
		return st.LastHandledConvergeAt != "" && st.Phase == api.PhaseReady, st.LastHandledConvergeAt
	})

	if code := ctl.stop(); code != 0 {
		t.Errorf("phoenix controller exit %d after SIGTERM, want 0", code)
	}
	// Without a controller converge runs in-process, as before.
	code, out, errOut = l.runCLI("converge", "941")
	if code != 0 || strings.Contains(out, "handed off") {
		t.Fatalf("converge without a controller: exit %d\n%s\n%s", code, out, errOut)
	}
}

// failHost fails script runs in one guest while armed.
type failHost struct {
	*sim.Sim
	id    api.ID
	armed atomic.Bool
}

func (h *failHost) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	if h.armed.Load() && id == h.id {
		return errors.New("feature script exited 1: boom")
	}
	return h.Sim.Run(ctx, kind, id, s)
}

func TestCLI_convergeHandOffReportsFailure(t *testing.T) {
	l := newLab(t)
	host := &failHost{Sim: l.host, id: 921}
	r := l.start(nil, host)
	r.waitReady()
	host.armed.Store(true)
	// 921 fails, so 941 never runs: it must still come out Failed.
	code, out, errOut := l.runCLI("converge", "941")
	if code != 1 {
		t.Fatalf("converge with a failing dependency: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "converge 941: Failed") || !strings.Contains(out, "boom") {
		t.Errorf("output does not report the failure:\n%s", out)
	}
	st := l.status(941)
	if st.Phase != api.PhaseFailed || !strings.Contains(st.LastError, "921") {
		t.Errorf("941 status: %s %q", st.Phase, st.LastError)
	}
	// Once the host recovers, the retry brings the guests back to Ready.
	host.armed.Store(false)
	waitFor(t, "941 and 921 Ready after retries", func() (bool, string) { return l.allReady([]api.ID{921, 941}) })
}

func TestCLI_lockRule(t *testing.T) {
	l := newLab(t)
	ctl := l.startCLIController()
	pid := "pid " + strconv.Itoa(os.Getpid())

	for _, args := range [][]string{
		{"create", "941"}, {"start", "941"}, {"stop", "941"}, {"restart", "941"}, {"delete", "956"},
		{"LetsGo"}, {"setup"}, {"converge", "941", "--handoff=false"},
	} {
		code, out, errOut := l.runCLI(args...)
		if code != 2 || !strings.Contains(errOut, pid) || !strings.Contains(errOut, "--wait-lock") {
			t.Errorf("%v while the controller runs: exit %d, want 2 with a message naming the %s\n%s%s", args, code, pid, out, errOut)
		}
	}
	for _, args := range [][]string{
		{"status"}, {"status", "941", "-o", "json"}, {"validate"}, {"graph", "941"}, {"diff"},
		{"create", "941", "--dry-run"}, {"converge", "941", "--dry-run"}, {"delete", "956", "--dry-run"},
	} {
		if code, out, errOut := l.runCLI(args...); code != 0 {
			t.Errorf("%v while the controller runs: exit %d, want 0\n%s%s", args, code, out, errOut)
		}
	}
	code, _, errOut := l.runCLI("controller", "--metrics-addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, pid) {
		t.Errorf("a second controller: exit %d, want 2 naming the %s\n%s", code, pid, errOut)
	}

	// --wait-lock waits for the controller to stop, then runs.
	done := make(chan string, 1)
	go func() {
		code, out, errOut := l.runCLI("create", "941", "--wait-lock", "60s")
		done <- fmt.Sprintf("%d\n%s%s", code, out, errOut)
	}()
	select {
	case res := <-done:
		t.Fatalf("create --wait-lock returned while the controller runs: %s", res)
	case <-time.After(200 * time.Millisecond):
	}
	if code := ctl.stop(); code != 0 {
		t.Errorf("controller exit %d", code)
	}
	if res := <-done; !strings.HasPrefix(res, "0\n") {
		t.Errorf("create --wait-lock after the controller stopped: %s", res)
	}
}

// resultSchema pins the -o json document (docs/design.md, "Output and exit codes").
const resultSchema = "../internal/cli/testdata/result.schema.json"

func validateResult(t *testing.T, doc string) {
	t.Helper()
	data, err := os.ReadFile(resultSchema)
	if err != nil {
		t.Logf("no %s: not validated", resultSchema)
		return
	}
	sdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://result.schema.json", sdoc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://result.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("does not match %s: %v\n%s", resultSchema, err, doc)
	}
}
