package pveapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

var ctx = context.Background()

func mustCreateLXC(tb testing.TB, h *Host, id api.ID, cfg map[string]string) {
	tb.Helper()
	err := h.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "local:vztmpl/ubuntu.tar.zst", Storage: "shared", DiskGB: 8, Config: cfg})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestHost_createPlacesByNodeFieldThenDefault(t *testing.T) {
	tc := newTestCluster(t)
	tc.host.SetPlacement(placement(map[api.ID]string{101: "pve2", 102: ""}))
	mustCreateLXC(t, tc.host, 101, map[string]string{"hostname": "a", "memory": "512"})
	mustCreateLXC(t, tc.host, 102, nil)
	if n := tc.fake.Guest(101).Node; n != "pve2" {
		t.Errorf("101 (node field pve2) is on %s", n)
	}
	if n := tc.fake.Guest(102).Node; n != "pve1" {
		t.Errorf("102 (no node field, default pve1) is on %s", n)
	}
	g, err := tc.host.Get(ctx, api.KindLXC, 101)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config["memory"] != "512" || g.Config["hostname"] != "a" || g.DiskGB != 8 || g.Running {
		t.Errorf("Get: %+v", g)
	}
	if _, err := tc.host.Get(ctx, api.KindLXC, 103); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get of a missing guest: %v", err)
	}
	if _, err := tc.host.Get(ctx, api.KindVM, 101); err == nil || !strings.Contains(err.Error(), "taken by a lxc on node pve2") {
		t.Errorf("Get of a container as a VM: %v", err)
	}
}

func TestHost_createRefusesUnknownOrMissingNode(t *testing.T) {
	tc := newTestCluster(t, func(_ *fakepveapi.Options, o *Options) { o.DefaultNode = "" })
	tc.host.SetPlacement(placement(map[api.ID]string{101: "pve9"}))
	err := tc.host.Create(ctx, api.KindLXC, 101, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared"})
	if err == nil || !strings.Contains(err.Error(), `node "pve9" (its node field) is not a node of the cluster (nodes: pve1, pve2, pve3)`) {
		t.Errorf("unknown node: %v", err)
	}
	err = tc.host.Create(ctx, api.KindLXC, 102, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared"})
	if err == nil || !strings.Contains(err.Error(), "pass --pve-default-node") {
		t.Errorf("no node at all: %v", err)
	}
}

func TestHost_cloneFollowsSourceOrCrossesNodesWithTarget(t *testing.T) {
	tc := newTestCluster(t)
	tc.host.SetPlacement(placement(map[api.ID]string{900: "pve2", 901: "", 902: "pve3"}))
	mustCreateLXC(t, tc.host, 900, map[string]string{"hostname": "base"})
	if err := tc.host.Snapshot(ctx, api.KindLXC, 900, "golden"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []api.ID{901, 902} {
		if err := tc.host.Clone(ctx, api.KindLXC, 900, id, hypervisor.CloneSpec{Snapshot: "golden", Name: fmt.Sprint("c", id)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := tc.fake.Guest(901).Node; n != "pve2" {
		t.Errorf("901 (no node field) should sit beside its source on pve2, is on %s", n)
	}
	if n := tc.fake.Guest(902).Node; n != "pve3" {
		t.Errorf("902 (node pve3) is on %s", n)
	}
	var targets []string
	for _, r := range tc.fake.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/clone") {
			if r.Path != "/nodes/pve2/lxc/900/clone" {
				t.Errorf("clone sent to %s, not the source's node", r.Path)
			}
			targets = append(targets, r.Params["newid"]+"->"+r.Params["target"])
		}
	}
	if strings.Join(targets, " ") != "901-> 902->pve3" {
		t.Errorf("clone targets %q", targets)
	}
	if err := tc.host.Clone(ctx, api.KindLXC, 900, 902, hypervisor.CloneSpec{}); err == nil || !strings.Contains(err.Error(), "already exists on node pve3") {
		t.Errorf("clone onto an existing ID: %v", err)
	}
}

func TestHost_crossNodeCloneFromLocalStorageFailsClearly(t *testing.T) {
	tc := newTestCluster(t, func(f *fakepveapi.Options, _ *Options) { f.LocalStorages = []string{"local-lvm"} })
	tc.host.SetPlacement(placement(map[api.ID]string{101: "pve3"}))
	if err := tc.host.Create(ctx, api.KindLXC, 100, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "local-lvm", DiskGB: 4}); err != nil {
		t.Fatal(err)
	}
	err := tc.host.Clone(ctx, api.KindLXC, 100, 101, hypervisor.CloneSpec{})
	want := "lxc 101: clone from 100 (node pve1) to node pve3: POST /nodes/pve1/lxc/100/clone: 500 can't clone CT to node 'pve3' (CT uses local storage 'local-lvm')"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestHost_failedTaskIsAnError(t *testing.T) {
	tc := newTestCluster(t)
	mustCreateLXC(t, tc.host, 100, nil)
	const exit = "startup for container '100' failed"

	// The Host checks the exit status.
	tc.fake.FailTask(fakepveapi.TaskFault{Type: "vzstart", VMID: 100, ExitStatus: exit})
	err := tc.host.Start(ctx, api.KindLXC, 100)
	var te *TaskError
	if !errors.As(err, &te) || te.ExitStatus != exit {
		t.Fatalf("Start with a failed task: %v", err)
	}
	if want := "lxc 100: start on node pve1: task vzstart on node pve1 failed: " + exit; err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
	if g := tc.fake.Guest(100); g.Running {
		t.Error("guest running after a failed start")
	}
	// WARNINGS is success.
	tc.fake.FailTask(fakepveapi.TaskFault{Type: "vzstart", VMID: 100, ExitStatus: "WARNINGS: 2"})
	if err := tc.host.Start(ctx, api.KindLXC, 100); err != nil {
		t.Errorf("task ending in WARNINGS: %v", err)
	}
}

func TestHost_retriesLocksAndTransient5xxWithBackoff(t *testing.T) {
	tests := []struct {
		name      string
		fault     fakepveapi.HTTPFault
		task      *fakepveapi.TaskFault
		op        func(h *Host) error
		wantErr   string
		wantTries int
	}{
		{
			name:      "lock on a write is retried",
			fault:     fakepveapi.HTTPFault{Method: "POST", Path: `/status/start$`, Status: 500, Message: "CT is locked (disk)", Times: 2},
			op:        func(h *Host) error { return h.Start(ctx, api.KindLXC, 100) },
			wantTries: 3,
		},
		{
			name:      "lock timeout on a config write is retried",
			fault:     fakepveapi.HTTPFault{Method: "PUT", Path: `/config$`, Status: 500, Message: "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout", Times: 1},
			op:        func(h *Host) error { return h.Set(ctx, api.KindLXC, 100, map[string]string{"memory": "1024"}) },
			wantTries: 2,
		},
		{
			name:      "proxy errors on reads are retried",
			fault:     fakepveapi.HTTPFault{Method: "GET", Path: `/cluster/resources`, Status: 596, Message: "Connection timed out", Times: 3},
			op:        func(h *Host) error { _, err := h.Get(ctx, api.KindLXC, 100); return err },
			wantTries: 4,
		},
		{
			name:      "a permanent 500 is not retried",
			fault:     fakepveapi.HTTPFault{Method: "POST", Path: `/status/start$`, Status: 500, Message: "CT 100 already running"},
			op:        func(h *Host) error { return h.Start(ctx, api.KindLXC, 100) },
			wantErr:   "lxc 100: start on node pve1: POST /nodes/pve1/lxc/100/status/start: 500 CT 100 already running",
			wantTries: 1,
		},
		{
			name:      "a lock that stays gives up after the retries",
			fault:     fakepveapi.HTTPFault{Method: "POST", Path: `/status/start$`, Status: 500, Message: "CT is locked (backup)"},
			op:        func(h *Host) error { return h.Start(ctx, api.KindLXC, 100) },
			wantErr:   "lxc 100: start on node pve1: POST /nodes/pve1/lxc/100/status/start: 500 CT is locked (backup) (gave up after 5 tries)",
			wantTries: 5,
		},
		{
			name:      "a task that failed on a lock is retried",
			task:      &fakepveapi.TaskFault{Type: "vzsnapshot", VMID: 100, ExitStatus: "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout"},
			op:        func(h *Host) error { return h.Snapshot(ctx, api.KindLXC, 100, "s1") },
			wantTries: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t)
			var waits []time.Duration
			tc.host.c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			mustCreateLXC(t, tc.host, 100, nil)
			before := len(tc.fake.Requests())
			if tt.fault.Path != "" {
				tc.fake.InjectHTTP(tt.fault)
			}
			if tt.task != nil {
				tc.fake.FailTask(*tt.task)
			}
			err := tt.op(tc.host)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err\n got %v\nwant %s", err, tt.wantErr)
			}
			tries := 0
			for _, r := range tc.fake.Requests()[before:] {
				if (tt.fault.Path != "" && r.Method == tt.fault.Method && strings.Contains(r.Path, strings.Trim(tt.fault.Path, "/$"))) ||
					(tt.task != nil && r.Method == "POST" && strings.HasSuffix(r.Path, "/snapshot")) {
					tries++
				}
			}
			if tries != tt.wantTries {
				t.Errorf("%d tries, want %d", tries, tt.wantTries)
			}
			if len(waits) != tt.wantTries-1 {
				t.Errorf("%d waits, want %d", len(waits), tt.wantTries-1)
			}
			for i := 1; i < len(waits); i++ {
				// Doubling with ±25% jitter: each wait is at least 1.2
				// times the one before (2*0.75 / 1.25).
				if waits[i]*5 < waits[i-1]*6 {
					t.Errorf("waits do not grow: %v", waits)
				}
			}
		})
	}
}

func TestHost_boundsWritesPerNode(t *testing.T) {
	tc := newTestCluster(t, func(f *fakepveapi.Options, o *Options) {
		f.TaskDuration = 20 * time.Millisecond
		o.NodeConcurrency = 2
	})
	nodes := map[api.ID]string{}
	for i := range 12 {
		nodes[api.ID(100+i)] = []string{"pve1", "pve2"}[i%2]
	}
	tc.host.SetPlacement(placement(nodes))
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for id := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tc.host.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared", DiskGB: 2})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"pve1", "pve2"} {
		if got := tc.fake.MaxRunningTasks(n); got != 2 {
			t.Errorf("node %s ran at most %d tasks at once, want exactly the bound 2", n, got)
		}
	}
}

func TestHost_nodeThatStopsAnsweringFailsFastAfterOneTimeout(t *testing.T) {
	tc := newTestCluster(t, func(_ *fakepveapi.Options, o *Options) { o.Timeout = 300 * time.Millisecond })
	tc.host.SetPlacement(placement(map[api.ID]string{100: "pve3", 101: "pve1"}))
	mustCreateLXC(t, tc.host, 100, nil)
	mustCreateLXC(t, tc.host, 101, nil)
	tc.fake.SetNodeDown("pve3", true)

	_, err := tc.host.Get(ctx, api.KindLXC, 100)
	if err == nil || !strings.Contains(err.Error(), "lxc 100: get on node pve3: GET /nodes/pve3/lxc/100/") ||
		!strings.Contains(err.Error(), "no answer within 300ms (is node pve3 up?)") {
		t.Fatalf("first request to a down node: %v", err)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Error("not ErrUnreachable")
	}
	// Failing fast means not asking the node again: the fake sees no
	// second request to pve3 (counted, not timed).
	before := requestsTo(tc.fake, "/nodes/pve3/")
	err = tc.host.Start(ctx, api.KindLXC, 100)
	if err == nil || !strings.Contains(err.Error(), "node pve3 did not answer a request within 300ms; not asking it again before") {
		t.Fatalf("second request: %v", err)
	}
	if after := requestsTo(tc.fake, "/nodes/pve3/"); after != before {
		t.Errorf("the second operation sent %d more requests to the down node; want none", after-before)
	}
	// The other nodes still work.
	if err := tc.host.Start(ctx, api.KindLXC, 101); err != nil {
		t.Errorf("guest on a live node: %v", err)
	}
}

func TestHost_rejectedTokenSaysSoWithoutTheSecret(t *testing.T) {
	tc := newTestCluster(t)
	opts := tc.opts
	opts.Token = Token{ID: testTokenID, secret: "wrong-" + testSecret}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Get(ctx, api.KindLXC, 100)
	if err == nil || !strings.Contains(err.Error(), "GET /cluster/resources: 401 No ticket: the API refused the token") {
		t.Errorf("err %v", err)
	}
	if strings.Contains(fmt.Sprint(err), testSecret) {
		t.Error("error shows the secret")
	}
}

func TestHost_setSplitsAPIKeysAndDeletes(t *testing.T) {
	tc := newTestCluster(t)
	mustCreateLXC(t, tc.host, 100, map[string]string{"memory": "512", "swap": "256"})
	if err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"memory": "2048", "swap": "", "cores": "2"}); err != nil {
		t.Fatal(err)
	}
	g := tc.fake.Guest(100)
	if g.Config["memory"] != "2048" || g.Config["cores"] != "2" {
		t.Errorf("config %v", g.Config)
	}
	if _, ok := g.Config["swap"]; ok {
		t.Error("swap not deleted")
	}
	err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"lxc.apparmor.profile": "unconfined"})
	if !errors.Is(err, ErrNeedSSH) || !strings.Contains(err.Error(), "--pve-ssh-key") {
		t.Errorf("raw key without SSH: %v", err)
	}
}

func TestHost_resizeGrowsOnly(t *testing.T) {
	tc := newTestCluster(t)
	mustCreateLXC(t, tc.host, 100, nil)
	if err := tc.host.Resize(ctx, api.KindLXC, 100, 20); err != nil {
		t.Fatal(err)
	}
	if err := tc.host.Resize(ctx, api.KindLXC, 100, 10); err == nil || !strings.Contains(err.Error(), "shrinking") {
		t.Errorf("shrink to 10G: %v; want a refusal", err)
	}
	g, _ := tc.host.Get(ctx, api.KindLXC, 100)
	if g.DiskGB != 20 {
		t.Errorf("disk %dG, want 20G", g.DiskGB)
	}
}

func TestHost_vmFromCloudImageTemplateAndDestroy(t *testing.T) {
	tc := newTestCluster(t)
	err := tc.host.Create(ctx, api.KindVM, 8000, hypervisor.CreateSpec{Source: "local:import/noble.qcow2", Storage: "shared", DiskGB: 40,
		Config: map[string]string{"name": "tmpl", "agent": "1", "memory": "2048"}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := tc.host.Get(ctx, api.KindVM, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if g.DiskGB != 40 || g.Config["ide2"] == "" || g.Config["memory"] != "2048" {
		t.Errorf("VM: disk %dG config %v", g.DiskGB, g.Config)
	}
	if err := tc.host.ConvertToTemplate(ctx, api.KindVM, 8000); err != nil {
		t.Fatal(err)
	}
	if g, _ := tc.host.Get(ctx, api.KindVM, 8000); !g.Template {
		t.Error("not a template")
	}
	if err := tc.host.Clone(ctx, api.KindVM, 8000, 8001, hypervisor.CloneSpec{Name: "vm1"}); err != nil {
		t.Fatal(err)
	}
	if err := tc.host.Destroy(ctx, api.KindVM, 8001); err != nil {
		t.Fatal(err)
	}
	if tc.fake.Guest(8001) != nil {
		t.Error("8001 still there")
	}
}

func TestHost_guestIndexIsReusedButNeverHidesChanges(t *testing.T) {
	tc := newTestCluster(t, func(_ *fakepveapi.Options, o *Options) { o.IndexTTL = time.Hour })
	mustCreateLXC(t, tc.host, 100, nil)
	listings := func() int {
		n := 0
		for _, r := range tc.fake.Requests() {
			if r.Path == "/cluster/resources" {
				n++
			}
		}
		return n
	}
	before := listings()
	for range 5 {
		if _, err := tc.host.Get(ctx, api.KindLXC, 100); err != nil {
			t.Fatal(err)
		}
	}
	if n := listings() - before; n > 1 {
		t.Errorf("5 Gets listed the cluster %d times", n)
	}
	// Created behind phoenix's back: a miss in the cache is asked again.
	tc.fake.AddGuest(fakepveapi.Guest{VMID: 101, Type: "lxc", Node: "pve2"})
	if _, err := tc.host.Get(ctx, api.KindLXC, 101); err != nil {
		t.Errorf("guest added behind phoenix's back: %v", err)
	}
	// Moved behind phoenix's back: the old node says it does not exist,
	// and the guest is looked up again.
	move := func(node string) {
		g := tc.fake.Guest(100)
		g.Node = node
		tc.fake.AddGuest(*g)
	}
	move("pve3")
	if got, err := tc.host.Get(ctx, api.KindLXC, 100); err != nil || got == nil {
		t.Errorf("Get of a guest moved behind phoenix's back: %v", err)
	}
	move("pve2")
	if err := tc.host.Start(ctx, api.KindLXC, 100); err != nil {
		t.Errorf("Start of a guest moved behind phoenix's back: %v", err)
	}
	// Its own destroy is seen at once.
	tc.host.Stop(ctx, api.KindLXC, 100)
	if err := tc.host.Destroy(ctx, api.KindLXC, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.host.Get(ctx, api.KindLXC, 100); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get after Destroy: %v", err)
	}
}

// TestHost_passReadsOneListPlusGuestsNeedingWork: a pass that checks every
// guest (as a controller resync does) costs one /cluster/resources
// request, plus one fresh list for each guest missing from it; config,
// status and snapshots are never read for it.
func TestHost_passReadsOneListPlusGuestsNeedingWork(t *testing.T) {
	for _, missing := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("%d missing", missing), func(t *testing.T) {
			tc := newTestCluster(t)
			var ids []api.ID
			for i := range 8 {
				id := api.ID(100 + i)
				ids = append(ids, id)
				tc.fake.AddGuest(fakepveapi.Guest{VMID: int(id), Type: "lxc", Node: tc.fake.Nodes()[i%3], Running: i%2 == 0,
					Config: map[string]string{"rootfs": fmt.Sprintf("shared:subvol-%d-disk-0,size=4G", id)}})
			}
			for i := range missing {
				ids = append(ids, api.ID(900+i))
			}
			before := len(tc.fake.Requests())
			for i, id := range ids {
				g, ok, err := hypervisor.Probe(ctx, tc.host, api.KindLXC, id)
				if err != nil {
					t.Fatal(err)
				}
				if ok != (id < 900) || (ok && g.Running != (i%2 == 0)) {
					t.Errorf("%s: exists %v, guest %+v", id, ok, g)
				}
			}
			reqs := tc.fake.Requests()[before:]
			for _, r := range reqs {
				if r.Path != "/cluster/resources" {
					t.Errorf("pass sent %s %s; want only the guest list", r.Method, r.Path)
				}
			}
			if want := 1 + missing; len(reqs) != want {
				t.Errorf("pass over %d guests (%d missing) sent %d requests, want %d", len(ids), missing, len(reqs), want)
			}
		})
	}
}
