package leader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"
)

const renew = 10 * time.Second

// step moves the fake clock once something waits on it (the elector's
// next try or renewal), so that no tick is missed.
func step(t *testing.T, clk *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	stepWhen(t, clk, 1, d)
}

// stepWhen moves the fake clock once n timers or tickers wait on it.
func stepWhen(t *testing.T, clk *clocktesting.FakeClock, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // only stops a hung test
	for clk.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(d)
}

// waitFor polls cond; the limit only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRecorded waits until term recorded a renewal at the clock's time
// (its timeout is stopped by then).
func waitRecorded(t *testing.T, term *Term, clk *clocktesting.FakeClock) {
	t.Helper()
	waitFor(t, "the renewal recorded", func() bool {
		term.mu.Lock()
		defer term.mu.Unlock()
		return term.renewed.Equal(clk.Now())
	})
}

func elector(t *testing.T, l Lock, clk *clocktesting.FakeClock) *Elector {
	t.Helper()
	e, err := NewElector(l, renew, clk, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestElector_standbyTakesOverOnRelease(t *testing.T) {
	c := newCluster(t)
	la := observedLock{c.lock("a"), make(chan error, 10)}
	ea, eb := elector(t, la, c.clock), elector(t, c.lock("b"), c.clock)
	ta, err := ea.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Term, 1)
	go func() {
		tb, err := eb.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- tb
	}()
	// Both wait on the clock: a's renewal ticker and b's next try.
	for range 5 {
		// a's next renewal and b's next try wait; a's renewal must be
		// over before the clock moves again, or it would time out.
		stepWhen(t, c.clock, 2, renew)
		if err := <-la.renewed; err != nil {
			t.Fatalf("a's renewal: %v", err)
		}
		waitRecorded(t, ta, c.clock)
		select {
		case <-got:
			t.Fatal("b leads while a renews")
		default:
		}
	}
	if err := eb.Healthy(); err != nil {
		t.Errorf("standby b not healthy: %v", err)
	}
	if err := ta.Release(); err != nil {
		t.Fatal(err)
	}
	step(t, c.clock, renew)
	tb := <-got
	if h := c.holder(); h != "b" {
		t.Errorf("holder %q after a released, want b", h)
	}
	if err := tb.Release(); err != nil {
		t.Fatal(err)
	}
	if h := c.holder(); h != "" {
		t.Errorf("holder %q after b released, want none", h)
	}
}

// observedLock reports each renewal's result, so a test can wait for it.
type observedLock struct {
	Lock
	renewed chan error
}

func (l observedLock) Renew(ctx context.Context) error {
	err := l.Lock.Renew(ctx)
	l.renewed <- err
	return err
}

func TestElector_termLostWithoutQuorum(t *testing.T) {
	c := newCluster(t)
	l := observedLock{c.lock("a"), make(chan error, 10)}
	e := elector(t, l, c.clock)
	term, err := e.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	step(t, c.clock, renew)
	if err := <-l.renewed; err != nil {
		t.Fatalf("renewal while quorate: %v", err)
	}
	waitRecorded(t, term, c.clock)
	c.fs.SetQuorate("a", false)
	step(t, c.clock, renew)
	if err := <-l.renewed; err == nil {
		t.Fatal("renewal without quorum succeeded")
	}
	<-term.Lost()
	if err := term.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Err %v, want ErrLost with pmxcfs' refusal", err)
	}
	if err := term.Release(); err != nil {
		t.Errorf("Release after a lost term: %v", err)
	}
}

// hangingLock is a lock whose renewals never answer, as a blocked
// /etc/pve would.
type hangingLock struct{ Lock }

func (hangingLock) TryAcquire(context.Context) (bool, error) { return true, nil }
func (hangingLock) Renew(context.Context) error              { select {} }
func (hangingLock) Lifetime() time.Duration                  { return PmxcfsLifetime }
func (hangingLock) String() string                           { return "hanging lock" }

func TestElector_hangingRenewalLosesTheTerm(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := elector(t, hangingLock{}, clk)
	term, err := e.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	step(t, clk, renew) // the renewal starts and hangs
	// One interval later it counts as failed.
	step(t, clk, renew)
	select {
	case <-term.Lost():
	case <-time.After(10 * time.Second): // only stops a hung test
		t.Fatal("a renewal that never answers did not lose the term")
	}
	if err := term.Err(); !errors.Is(err, ErrLost) {
		t.Errorf("Err %v, want ErrLost", err)
	}
}

func TestNewElector_renewMustFitTheLifetime(t *testing.T) {
	c := newCluster(t)
	for _, r := range []time.Duration{0, -time.Second, PmxcfsLifetime / 2, PmxcfsLifetime} {
		if _, err := NewElector(c.lock("a"), r, c.clock, logr.Discard()); err == nil || !strings.Contains(err.Error(), "--leader-renew") {
			t.Errorf("renew %s: error %v, want one naming --leader-renew", r, err)
		}
	}
}

func TestTerm_freshUntilTheLockCouldExpire(t *testing.T) {
	c := newCluster(t)
	e := elector(t, c.lock("a"), c.clock)
	term, err := e.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !term.Fresh() {
		t.Fatal("a term just taken is not fresh")
	}
	// The process stalls for a lifetime: when it runs again, the term is
	// stale before any renewal had a chance to fail.
	step(t, c.clock, PmxcfsLifetime)
	if term.Fresh() {
		t.Error("a term not renewed for a whole lifetime is fresh")
	}
	<-term.Lost()
}
