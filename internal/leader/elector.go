package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Elector campaigns for a lock and keeps it renewed.
type Elector struct {
	lock  Lock
	renew time.Duration
	clock clock.WithTicker
	log   logr.Logger

	mu      sync.Mutex
	lastErr error
	tried   bool
}

// NewElector returns an elector for lock that tries (and, once holding,
// renews) every renew. A nil clk is the real clock. renew must be under
// half the lock's lifetime: a renewal may take up to one interval before
// it counts as failed, and the holder must have stopped before the lock
// can expire under it.
func NewElector(lock Lock, renew time.Duration, clk clock.WithTicker, log logr.Logger) (*Elector, error) {
	if renew <= 0 || 2*renew >= lock.Lifetime() {
		return nil, fmt.Errorf("--leader-renew %s: want more than 0 and under half the %s lifetime of the %s", renew, lock.Lifetime(), lock)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Elector{lock: lock, renew: renew, clock: clk, log: log}, nil
}

// Lock is the lock the elector campaigns for.
func (e *Elector) Lock() Lock { return e.lock }

// Healthy reports whether the last try to take the lock reached it
// (someone else may hold it): nil, or what went wrong. Before the first
// try it reports that one is pending.
func (e *Elector) Healthy() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.tried {
		return fmt.Errorf("%s not tried yet", e.lock)
	}
	return e.lastErr
}

func (e *Elector) record(err error) (changed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed = !e.tried || (err == nil) != (e.lastErr == nil) ||
		(err != nil && e.lastErr != nil && err.Error() != e.lastErr.Error())
	e.tried, e.lastErr = true, err
	return changed
}

// Acquire tries the lock every renew interval until it holds it, or ctx
// ends (then it returns ctx's error). The Term it returns renews the lock
// in the background until it is released or a renewal fails.
func (e *Elector) Acquire(ctx context.Context) (*Term, error) {
	for {
		tried := e.clock.Now()
		ok, err := e.lock.TryAcquire(ctx)
		if e.record(err) {
			if err != nil {
				e.log.Error(err, "Cannot reach the leader lock; standing by", "lock", e.lock.String())
			} else if !ok {
				e.log.Info("Another controller leads; standing by", "lock", e.lock.String())
			}
		}
		if ok {
			e.log.Info("Became the leader", "lock", e.lock.String(), "renew", e.renew.String(), "lifetime", e.lock.Lifetime().String())
			t := &Term{e: e, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}), renewed: tried}
			go t.run()
			return t, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.clock.After(e.renew):
		}
	}
}

// Term is one period of leadership.
type Term struct {
	e          *Elector
	lost, stop chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	err        error

	mu sync.Mutex
	// renewed is when the last successful renewal (or the take) started:
	// the lock cannot expire before renewed plus its lifetime.
	renewed time.Time
}

// Fresh reports whether the lock is certainly still held: its last renewal
// started less than the lifetime minus one renewal interval ago. A leader
// whose process stalled (a paused VM, SIGSTOP) may wake up with a lock
// that expired meanwhile; it checks Fresh before it acts, rather than
// waiting for its next renewal to fail.
func (t *Term) Fresh() bool {
	if t.Err() != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.e.clock.Since(t.renewed) < t.e.lock.Lifetime()-t.e.renew
}

// Lost is closed when a renewal failed: the holder must stop acting as
// leader at once. Err says why.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Err is why the term was lost, or nil.
func (t *Term) Err() error {
	select {
	case <-t.lost:
		return t.err
	default:
		return nil
	}
}

func (t *Term) run() {
	defer close(t.done)
	for {
		// A timer per round, not a ticker: the next renewal is one
		// interval after the last one ended, and a stopped timer is gone.
		next := t.e.clock.NewTimer(t.e.renew)
		select {
		case <-t.stop:
			next.Stop()
			return
		case <-next.C():
		}
		started := t.e.clock.Now()
		res := make(chan error, 1)
		go func() { res <- t.e.lock.Renew(context.Background()) }()
		var err error
		timeout := t.e.clock.NewTimer(t.e.renew)
		select {
		case err = <-res:
			timeout.Stop()
		case <-timeout.C():
			// A renewal that hangs (pmxcfs blocked) counts as failed
			// before the lock can expire under us.
			err = fmt.Errorf("renew %s: no answer within %s: %w", t.e.lock, t.e.renew, ErrLost)
		}
		if err != nil {
			t.err = err
			close(t.lost)
			return
		}
		t.mu.Lock()
		t.renewed = started
		t.mu.Unlock()
	}
}

// Release stops renewing and, unless the term was lost, releases the lock
// so that a standby takes over at its next try.
func (t *Term) Release() error {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
	if t.Err() != nil {
		return nil
	}
	if err := t.e.lock.Release(); err != nil {
		return err
	}
	t.e.log.Info("Released the leader lock", "lock", t.e.lock.String())
	return nil
}
