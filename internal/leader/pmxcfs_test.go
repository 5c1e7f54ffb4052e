package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pmxcfs"
)

const etc = "/etc/pve"

// cluster is a fake pmxcfs with one clock shared by it and every lock.
type cluster struct {
	t     *testing.T
	clock *clocktesting.FakeClock
	fs    *pmxcfs.Cluster
}

func newCluster(t *testing.T) *cluster {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return &cluster{t: t, clock: clk, fs: pmxcfs.New(etc, clk)}
}

// lock is one controller process on node.
func (c *cluster) lock(node string) *Pmxcfs {
	return NewPmxcfs(c.fs.Node(node), etc, LockName, c.clock)
}

func (c *cluster) try(l *Pmxcfs) bool {
	c.t.Helper()
	ok, err := l.TryAcquire(context.Background())
	if err != nil {
		c.t.Fatalf("%s: TryAcquire: %v", l, err)
	}
	return ok
}

func (c *cluster) holder() string {
	n, _ := c.fs.Holder(LockName)
	return n
}

func TestPmxcfs_oneHolderAcrossNodes(t *testing.T) {
	c := newCluster(t)
	a, b, a2 := c.lock("a"), c.lock("b"), c.lock("a")
	if !c.try(a) {
		t.Fatal("node a could not take a free lock")
	}
	// Ten minutes of renewals every 10 s: b and a second process on a's
	// own node (pmxcfs' same writer) never get it.
	for range 60 {
		c.clock.Step(10 * time.Second)
		if err := a.Renew(context.Background()); err != nil {
			t.Fatalf("renewal by the holder at %s: %v", c.clock.Now().Format(time.TimeOnly), err)
		}
		if c.try(b) {
			t.Fatal("node b took a lock node a renews")
		}
		if c.try(a2) {
			t.Fatal("a second process on node a took the lock its first process holds")
		}
	}
	if h := c.holder(); h != "a" {
		t.Errorf("holder %q, want a", h)
	}
}

func TestPmxcfs_takeover(t *testing.T) {
	const renew = 10 * time.Second
	for _, tc := range []struct {
		name string
		// stop ends a's leadership the way the case says.
		stop func(c *cluster, a *Pmxcfs)
		// wantWithin bounds when b holds it, from the stop.
		wantAfter, wantWithin time.Duration
	}{
		{name: "holder killed: the lock expires",
			stop:      func(*cluster, *Pmxcfs) {},
			wantAfter: PmxcfsLifetime, wantWithin: PmxcfsLifetime + renew},
		{name: "holder partitioned: no quorum, renewals fail",
			stop: func(c *cluster, a *Pmxcfs) {
				c.fs.SetQuorate("a", false)
				err := a.Renew(context.Background())
				if !errors.Is(err, ErrLost) {
					c.t.Errorf("renewal without quorum: %v, want ErrLost", err)
				}
				if ok, err := a.TryAcquire(context.Background()); ok || err == nil {
					c.t.Errorf("take without quorum: %v, %v; want false and an error", ok, err)
				}
			},
			wantAfter: PmxcfsLifetime, wantWithin: PmxcfsLifetime + renew},
		{name: "holder stops: rmdir frees it at once",
			stop: func(c *cluster, a *Pmxcfs) {
				if err := a.Release(); err != nil {
					c.t.Fatal(err)
				}
			},
			wantAfter: 0, wantWithin: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			a, b := c.lock("a"), c.lock("b")
			if !c.try(a) {
				t.Fatal("a could not take a free lock")
			}
			c.clock.Step(renew)
			if err := a.Renew(context.Background()); err != nil {
				t.Fatal(err)
			}
			stopped := c.clock.Now()
			tc.stop(c, a)
			for !c.try(b) {
				if c.clock.Since(stopped) > 10*PmxcfsLifetime {
					t.Fatal("b never took the lock")
				}
				c.clock.Step(renew)
			}
			took := c.clock.Since(stopped)
			if took < tc.wantAfter || took > tc.wantWithin {
				t.Errorf("b took the lock %s after a stopped, want between %s and %s", took, tc.wantAfter, tc.wantWithin)
			}
			if h := c.holder(); h != "b" {
				t.Errorf("holder %q, want b", h)
			}
			// Whatever a does now, it cannot act as the holder again.
			c.fs.SetQuorate("a", true)
			if err := a.Renew(context.Background()); !errors.Is(err, ErrLost) {
				t.Errorf("a's renewal after the takeover: %v, want ErrLost", err)
			}
			if c.try(a) {
				t.Error("a took the lock back while b holds it")
			}
		})
	}
}

func TestPmxcfs_noRenewalBeyondLifetime(t *testing.T) {
	// pmxcfs itself would accept a late renewal from the last writer if
	// nobody asked to drop the lock yet; the holder must not rely on it.
	c := newCluster(t)
	a := c.lock("a")
	if !c.try(a) {
		t.Fatal("a could not take a free lock")
	}
	c.clock.Step(PmxcfsLifetime)
	if err := a.Renew(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("renewal a lifetime after the last one: %v, want ErrLost", err)
	}
}

func TestPmxcfs_notMounted(t *testing.T) {
	dir := t.TempDir() // no priv/lock, and a plain folder refuses nothing
	l := NewPmxcfs(OSFS{}, dir+"/missing", LockName, nil)
	ok, err := l.TryAcquire(context.Background())
	if ok || err == nil {
		t.Fatalf("TryAcquire on a missing /etc/pve: %v, %v; want false and an error", ok, err)
	}
}
