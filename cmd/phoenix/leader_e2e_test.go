package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

// electing is one `phoenix controller --leader-elect` process.
type electing struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	addr string
	logs *testlab.SyncBuffer
}

// startElecting starts a controller with leader election on the lab's
// config and state dir. Renewals every 500ms and a 4s lease keep the test
// short (a renewal that takes longer than 500ms on a loaded machine would
// make the leader step down); pmxcfs is pointed at an empty folder, so the lock is the state
// dir's lock file.
func (l *lab) startElecting(name string) *electing {
	l.t.Helper()
	addr := freeAddr(l.t)
	c := l.cmd("controller", "--leader-elect", "--leader-renew", "500ms", "--leader-lease", "4s",
		"--pve-etc", l.t.TempDir(), "--workers", "4", "--metrics-addr", addr, "--resync", "0", "--debounce", "50ms")
	e := &electing{t: l.t, name: name, cmd: c, addr: addr, logs: &testlab.SyncBuffer{}}
	c.Stderr = e.logs
	if err := c.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if l.t.Failed() {
			l.t.Logf("%s's log:\n%s", name, e.logs.String())
		}
	})
	return e
}

func (e *electing) get(path string) (int, string) {
	resp, err := http.Get("http://" + e.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric is the value of an unlabelled series in /metrics, or -1.
func (e *electing) metric(name string) float64 {
	_, body := e.get("/metrics")
	sum, found := 0.0, false
	for _, line := range strings.Split(body, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				sum, found = sum+v, true
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

// until polls cond until it holds; the minute only stops a hung test.
func until(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > time.Minute {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (e *electing) leading() bool { return e.metric("phoenix_leader") == 1 }

func (e *electing) ready() bool {
	code, body := e.get("/readyz")
	return code == http.StatusOK && !strings.Contains(body, "standby")
}

func (e *electing) standingBy() bool {
	code, body := e.get("/readyz")
	return code == http.StatusOK && strings.Contains(body, "standby") && e.metric("phoenix_leader") == 0
}

// reconciles counts the log lines of e that start a reconcile of guest id
// for the given reason.
func (e *electing) reconciles(id, reason string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `msg="Reconciling guest"`) && strings.Contains(line, "guest="+id+" ") &&
			strings.Contains(line, `reason="`+reason+`"`) {
			n++
		}
	}
	return n
}

// apply941Memory edits guest 941's memory and waits until its status records
// the new spec.
func (l *lab) apply941Memory(mb int) {
	l.t.Helper()
	file := filepath.Join(l.cfgDir, api.LXCFile)
	data, err := os.ReadFile(file)
	if err != nil {
		l.t.Fatal(err)
	}
	before := l.statuses()["941"].ObservedSpecHash
	if data, err = sjson.SetBytes(data, "lxc_configs.941.memory_mb", mb); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		l.t.Fatal(err)
	}
	until(l.t, fmt.Sprintf("941 applied with %d MB", mb), func() bool {
		st := l.statuses()["941"]
		return st.ObservedSpecHash != before && st.Phase == api.PhaseReady
	})
}

// TestController_leaderElection runs controllers with --leader-elect on one
// config and state dir: one leads while the other stands by and reconciles
// nothing; each edit is applied once, by the leader of the moment; a
// standby takes over from a SIGKILLed leader within the lease and from a
// SIGTERMed one at once.
func TestController_leaderElection(t *testing.T) {
	l := newLab(t)
	a := l.startElecting("a")
	until(t, "a leading", a.leading)
	until(t, "a's first full sync", a.ready)
	b := l.startElecting("b")
	until(t, "b standing by", b.standingBy)

	edits := 0
	spec := "spec changed"
	all := []*electing{a, b}
	edit := func(mb int) {
		t.Helper()
		l.apply941Memory(mb)
		edits++
		n := 0
		for _, e := range all {
			n += e.reconciles("941", spec)
		}
		if n != edits {
			t.Errorf("after %d edits 941 was reconciled for them %d times", edits, n)
		}
	}
	edit(12288)
	if n := b.metric("phoenix_reconcile_total"); n != 0 {
		t.Errorf("standby b reconciled %v times", n)
	}

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := until(t, "b leading after a's SIGKILL", b.leading)
	_ = a.cmd.Wait()
	t.Logf("SIGKILL of the leader -> standby leads: %s (renew 500ms, lease 4s)", took.Round(time.Millisecond))
	until(t, "b's first full sync", b.ready)
	edit(16384)

	c := l.startElecting("c")
	all = append(all, c)
	until(t, "c standing by", c.standingBy)
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took = until(t, "c leading after b's SIGTERM", c.leading)
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("b after SIGTERM: %v, want exit 0", err)
	}
	t.Logf("SIGTERM of the leader -> standby leads: %s (renew 500ms)", took.Round(time.Millisecond))
	until(t, "c's first full sync", c.ready)
	edit(20480)
	if n := c.reconciles("941", spec); n != 1 {
		t.Errorf("c reconciled 941 for a spec change %d times, want 1", n)
	}

	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s was created %d times", id, n)
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("c after SIGTERM: %v", err)
	}
}

// TestController_stuckLeaderIsReplaced stops the leader's process
// (SIGSTOP: alive but not renewing, like a hung node). The standby takes
// the lock once the lease ran out, then waits for the state dir; when the
// old leader runs again its next renewal fails, it exits 1 without
// reconciling anything, and the new leader applies the next edit.
func TestController_stuckLeaderIsReplaced(t *testing.T) {
	l := newLab(t)
	a := l.startElecting("a")
	until(t, "a leading", a.leading)
	until(t, "a's first full sync", a.ready)
	b := l.startElecting("b")
	until(t, "b standing by", b.standingBy)

	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := until(t, "b taking the lock from the stopped a", func() bool {
		return strings.Contains(b.logs.String(), `msg="Became the leader"`)
	})
	t.Logf("SIGSTOP of the leader -> standby holds the lock: %s (lease 4s)", took.Round(time.Millisecond))
	if b.leading() {
		t.Error("b leads while the stopped a still holds the state dir")
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := a.cmd.Wait()
	if code := a.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("a after losing its lock: %v (exit %d), want exit 1", err, code)
	}
	if !strings.Contains(a.logs.String(), "Lost the leader lock") {
		t.Error("a did not log that it lost the leader lock")
	}
	until(t, "b leading", b.leading)
	until(t, "b's first full sync", b.ready)
	l.apply941Memory(12288)
	if n := a.reconciles("941", "spec changed") + b.reconciles("941", "spec changed"); n != 1 {
		t.Errorf("the edit was reconciled %d times, want 1", n)
	}
	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s was created %d times", id, n)
		}
	}
}
