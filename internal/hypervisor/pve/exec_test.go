package pve

import (
	"testing"
	"time"
)

// The lock-retry waits are what --pve-lock-backoff documents: the first
// wait, doubling per retry, capped at maxBackoff, plus up to 50% jitter.
func TestLockPolicyWaits(t *testing.T) {
	h := &Host{opts: Options{LockBackoff: 2 * time.Second, LockRetries: 3}}
	p := h.lockPolicy(0)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for n, base := range want {
		for range 50 {
			if d := p.Jittered(n); d < base || d > base+base/2 {
				t.Fatalf("wait before retry %d = %s, want within [%s, %s]", n+1, d, base, base+base/2)
			}
		}
	}
	if p.Retries != 3 || p.For != 0 {
		t.Errorf("policy retries %d for %s, want 3 retries and no time limit", p.Retries, p.For)
	}
	// A clone waiting for another clone of its source retries by time.
	if p := h.lockPolicy(time.Minute); p.For != time.Minute {
		t.Errorf("lockWait policy: For = %s, want 1m", p.For)
	}
}
