package controller_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tidwall/sjson"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pmxcfs"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
	"github.com/phoenix-hypervisor/phoenix/internal/leader"
)

// startElecting runs a controller on the lab that campaigns with e; host
// (when not nil) replaces the lab's simulated host.
func (l *lab) startElecting(e *leader.Elector, host hypervisor.Host) *running {
	l.t.Helper()
	return l.startWith(nil, host, func(c *controller.Controller) { c.ElectLeader(e) })
}

// exited waits for Run to return on its own and returns its error.
func (r *running) exited() error {
	r.l.t.Helper()
	select {
	case err := <-r.done:
		close(r.done) // shutdown at cleanup then finds it stopped
		return err
	case <-time.After(60 * time.Second): // only stops a hung test
		r.l.t.Fatal("controller did not stop")
		return nil
	}
}

func (r *running) leading() (bool, string) {
	v := r.metric("phoenix_leader", nil)
	return v == 1, fmt.Sprint("phoenix_leader ", v)
}

func (r *running) standingBy() (bool, string) {
	code, body := r.get("/readyz")
	return code == 200 && strings.Contains(body, "standby"), fmt.Sprint(code, " ", body)
}

// creations counts creates and clones per guest in the sim's ops.log.
func (l *lab) creations() map[string]int {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.stateDir, "sim", "ops.log"))
	if err != nil {
		l.t.Fatal(err)
	}
	n := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && (f[1] == "create" || f[1] == "clone") {
			n[f[3]]++
		}
	}
	return n
}

// setMemory edits guest 941's memory and waits until the host shows it.
func (l *lab) setMemory(mb int) {
	l.t.Helper()
	edited, err := sjson.SetBytes(l.read(api.LXCFile), "lxc_configs.941.memory_mb", mb)
	if err != nil {
		l.t.Fatal(err)
	}
	l.write(api.LXCFile, edited)
	waitFor(l.t, fmt.Sprintf("941's memory %d on the host", mb), func() (bool, string) {
		g, _ := l.guest(api.KindLXC, 941)
		if g == nil {
			return false, "941 missing"
		}
		return g.Config["memory"] == fmt.Sprint(mb), fmt.Sprint(g.Config["memory"])
	})
}

// TestController_leaderElectionOnPmxcfs runs two controllers on one config
// and state dir, on nodes a and b of a fake pmxcfs: a leads and b stands
// by; then a loses quorum, stops with an error, and b takes over within
// pmxcfs' lifetime plus one renewal and applies the next edit.
func TestController_leaderElectionOnPmxcfs(t *testing.T) {
	l := newLab(t)
	clk, cfs, elect := fakeCluster(t)
	a := l.startElecting(elect("a"), nil)
	waitFor(t, "a leading", a.leading)
	a.waitReady()
	b := l.startElecting(elect("b"), nil)
	waitFor(t, "b standing by", b.standingBy)
	a.idle()
	if got := a.metric("phoenix_leader", nil); got != 1 {
		t.Errorf("a: phoenix_leader %v, want 1", got)
	}
	if got := b.metric("phoenix_leader", nil); got != 0 {
		t.Errorf("b: phoenix_leader %v, want 0", got)
	}

	l.setMemory(12288)
	a.idle()
	if n := b.metric("phoenix_reconcile_total", nil); n != 0 {
		t.Errorf("standby b reconciled %v times", n)
	}
	if n := b.metric("phoenix_config_reloads_total", map[string]string{"result": "success"}); n < 2 {
		t.Errorf("standby b loaded the files %v times, want the start and the edit", n)
	}

	// Partition a. Its next renewal fails and it stops; b takes the lock
	// once pmxcfs lets the unrenewed lock expire.
	cfs.SetQuorate("a", false)
	partitioned := clk.Now()
	stepWhen(t, clk, 2, renew) // a's renewal and b's next try
	if err := a.exited(); !errors.Is(err, leader.ErrLost) {
		t.Errorf("a after losing quorum: %v, want an error wrapping leader.ErrLost", err)
	}
	if got := a.metric("phoenix_leader", nil); got != 0 {
		t.Errorf("a after losing the lock: phoenix_leader %v, want 0", got)
	}
	takeOver(t, clk, cfs, "b")
	if took := clk.Since(partitioned); took > pmxcfs.Lifetime+renew {
		t.Errorf("b took the lock %s after a's last renewal, want at most the lifetime plus a renewal (%s)", took, pmxcfs.Lifetime+renew)
	}
	waitFor(t, "b leading", b.leading)
	b.waitReady()
	l.setMemory(16384)
	b.idle()
	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s created %d times", id, n)
		}
	}
	if got := b.metric("phoenix_leader_transitions_total", nil); got != 1 {
		t.Errorf("b: phoenix_leader_transitions_total %v, want 1", got)
	}
}

const renew = 10 * time.Second

// fakeCluster is a fake pmxcfs on a fake clock, and a way to make the
// elector of a controller on one of its nodes.
func fakeCluster(t *testing.T) (*clocktesting.FakeClock, *pmxcfs.Cluster, func(node string) *leader.Elector) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfs := pmxcfs.New("/etc/pve", clk)
	return clk, cfs, func(node string) *leader.Elector {
		e, err := leader.NewElector(leader.NewPmxcfs(cfs.Node(node), "/etc/pve", leader.LockName, clk), renew, clk, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}

// TestController_leaderLosesLockMidSync: a leader partitioned while it
// creates guests stops at once, leaves no guest Provisioning, and the next
// leader finishes the work without creating any guest twice.
func TestController_leaderLosesLockMidSync(t *testing.T) {
	l := newLab(t)
	slow, err := sim.New(sim.Options{Dir: l.host.Dir(), Latency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	clk, cfs, elect := fakeCluster(t)
	a := l.startElecting(elect("a"), slow)
	waitFor(t, "work in flight", func() (bool, string) {
		for _, id := range exampleIDs {
			if l.status(id).Phase == api.PhaseProvisioning {
				return true, ""
			}
		}
		return false, "nothing Provisioning yet"
	})
	cfs.SetQuorate("a", false)
	stepWhen(t, clk, 1, renew) // a's renewal
	if err := a.exited(); !errors.Is(err, leader.ErrLost) {
		t.Fatalf("a after losing quorum: %v, want an error wrapping leader.ErrLost", err)
	}
	failed := 0
	for _, id := range exampleIDs {
		st := l.status(id)
		switch st.Phase {
		case api.PhaseProvisioning:
			t.Errorf("%s left Provisioning by a leader that lost its lock", id)
		case api.PhaseFailed:
			failed++
			if st.LastError == "" {
				t.Errorf("%s Failed without an error", id)
			}
		}
	}
	t.Logf("%d guests recorded Failed (cancelled) by the leader that lost its lock", failed)

	b := l.startElecting(elect("b"), nil)
	waitFor(t, "b standing by", b.standingBy)
	takeOver(t, clk, cfs, "b")
	waitFor(t, "b leading", b.leading)
	b.waitReady()
	if ok, why := l.allReady(exampleIDs); !ok {
		t.Errorf("after b's first sync: %s", why)
	}
	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s created %d times", id, n)
		}
	}
}

// stepWhen moves the fake clock once n timers wait on it: the renewals
// and tries that should happen at the next tick.
func stepWhen(t *testing.T, clk *clocktesting.FakeClock, n int, d time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d timers on the fake clock", n), func() (bool, string) {
		return clk.Waiters() >= n, fmt.Sprint(clk.Waiters(), " waiting")
	})
	clk.Step(d)
}

// takeOver moves the clock one renewal interval at a time, each time once
// node's elector waits for its next try, until node holds the pmxcfs lock.
// Only node's elector may use the clock meanwhile.
func takeOver(t *testing.T, clk *clocktesting.FakeClock, cfs *pmxcfs.Cluster, node string) {
	t.Helper()
	for start := clk.Now(); ; {
		// node's try runs between the step and its next timer.
		stepWhen(t, clk, 1, renew)
		stepWhen(t, clk, 1, 0)
		if h, _ := cfs.Holder(leader.LockName); h == node {
			return
		}
		if clk.Since(start) > 3*pmxcfs.Lifetime {
			t.Fatalf("%s never took the lock", node)
		}
	}
}
