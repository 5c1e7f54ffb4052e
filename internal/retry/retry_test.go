package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayGrowsAndIsCapped(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []time.Duration
	}{
		{"doubling capped", Policy{Initial: 2 * time.Second, Factor: 2, Max: 30 * time.Second},
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"cap below initial", Policy{Initial: time.Minute, Factor: 2, Max: 30 * time.Second},
			[]time.Duration{30 * time.Second, 30 * time.Second}},
		{"constant interval", Policy{Initial: 3 * time.Second},
			[]time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"no cap", Policy{Initial: time.Millisecond, Factor: 10},
			[]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}},
		{"zero initial", Policy{Factor: 2}, []time.Duration{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for n, want := range tc.want {
				if got := tc.p.Delay(n); got != want {
					t.Errorf("Delay(%d) = %s, want %s", n, got, want)
				}
			}
		})
	}
}

func TestDelayDoesNotOverflow(t *testing.T) {
	p := Policy{Initial: time.Second, Factor: 2}
	if d := p.Delay(1000); d <= 0 {
		t.Fatalf("Delay(1000) = %s, want a huge positive wait", d)
	}
	p.Max = time.Hour
	if d := p.Delay(1000); d != time.Hour {
		t.Fatalf("Delay(1000) with cap = %s, want 1h", d)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	tests := []struct {
		name   string
		p      Policy
		lo, hi time.Duration
	}{
		{"upwards", Policy{Initial: time.Second, Jitter: 0.5}, time.Second, 1500 * time.Millisecond},
		{"centred", Policy{Initial: time.Second, Jitter: 0.5, Centered: true}, 750 * time.Millisecond, 1250 * time.Millisecond},
		{"none", Policy{Initial: time.Second}, time.Second, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 500 {
				d := tc.p.Jittered(0)
				if d < tc.lo || d > tc.hi {
					t.Fatalf("Jittered(0) = %s, want within [%s, %s]", d, tc.lo, tc.hi)
				}
				seen[d] = true
			}
			if tc.lo != tc.hi && len(seen) < 10 {
				t.Errorf("500 jittered waits gave only %d distinct values", len(seen))
			}
		})
	}
}

// recorder stands in for Sleep and keeps the waits asked for.
type recorder struct{ waits []time.Duration }

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func TestRetrierCountsTries(t *testing.T) {
	for _, retries := range []int{0, 1, 4} {
		rec := &recorder{}
		p := Policy{Initial: time.Second, Factor: 2, Max: 3 * time.Second, Retries: retries, Sleep: rec.sleep}
		r := p.Start()
		calls := 1
		for r.Wait(context.Background()) == nil {
			calls++
		}
		if calls != retries+1 || r.Tries() != retries+1 {
			t.Errorf("Retries=%d: %d tries (Tries()=%d), want %d", retries, calls, r.Tries(), retries+1)
		}
		want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}[:retries]
		if len(rec.waits) != len(want) {
			t.Fatalf("Retries=%d: waits %v, want %v", retries, rec.waits, want)
		}
		for i := range want {
			if rec.waits[i] != want[i] {
				t.Errorf("Retries=%d: waits %v, want %v", retries, rec.waits, want)
			}
		}
	}
}

func TestRetrierForGoesByTime(t *testing.T) {
	p := Policy{Initial: time.Millisecond, For: 30 * time.Millisecond, Retries: 0}
	r := p.Start()
	for r.Wait(context.Background()) == nil {
	}
	if r.Waited() < 30*time.Millisecond {
		t.Errorf("gave up after %s, want at least 30ms", r.Waited())
	}
	if r.Tries() < 2 {
		t.Errorf("%d tries: For should override Retries=0", r.Tries())
	}
}

func TestWaitStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Initial: time.Hour, Retries: 3}
	r := p.Start()
	done := make(chan error, 1)
	go func() { done <- r.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after cancel")
	}
	if r.Tries() != 1 {
		t.Errorf("Tries() = %d after an interrupted wait, want 1", r.Tries())
	}
}

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"elapses", context.Background(), time.Millisecond, nil},
		{"zero", context.Background(), 0, nil},
		{"negative", context.Background(), -time.Second, nil},
		{"already cancelled", cancelled, time.Hour, context.Canceled},
		{"cancelled zero", cancelled, 0, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Sleep(tc.ctx, tc.d); !errors.Is(err, tc.want) {
				t.Errorf("Sleep = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSleepDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep = %v, want context.DeadlineExceeded", err)
	}
}
