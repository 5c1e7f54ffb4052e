package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ErrExhausted is returned by Retrier.Wait when the policy allows no more
// tries.
var ErrExhausted = errors.New("no tries left")

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx's error in the second case (also when ctx has already ended, or d is
// not positive and ctx has ended).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Policy says how often to try again and how long to wait in between.
type Policy struct {
	// Initial is the wait before the first retry.
	Initial time.Duration
	// Factor multiplies the wait after each retry; below 1 (the zero
	// value included) it is 1: a constant interval.
	Factor float64
	// Max caps the wait before jitter; 0 means no cap.
	Max time.Duration
	// Jitter spreads each wait by a random fraction of it: the wait d
	// becomes d + U[0, Jitter·d], or d + U[-Jitter·d/2, Jitter·d/2] when
	// Centered, so that parallel workers do not retry in step.
	Jitter   float64
	Centered bool
	// Retries is how often a failed try is retried: at most Retries+1
	// tries in all. Ignored when For is set.
	Retries int
	// For, when positive, replaces Retries: retries go on until For has
	// passed since the first try.
	For time.Duration
	// Sleep waits between tries; nil means Sleep. Tests set it to record
	// the waits instead of taking them.
	Sleep func(context.Context, time.Duration) error
}

// Delay is the wait before retry n (0-based: n=0 is the wait after the
// first failed try), before jitter: Initial·Factor^n, capped at Max.
func (p Policy) Delay(n int) time.Duration {
	d := p.Initial
	if d <= 0 {
		return 0
	}
	f := max(p.Factor, 1)
	for i := 0; i < n && f > 1 && (p.Max <= 0 || d < p.Max); i++ {
		next := time.Duration(float64(d) * f)
		if next <= d { // overflow
			d = time.Duration(1<<63 - 1)
			break
		}
		d = next
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return d
}

// Jittered is Delay(n) spread by Jitter.
func (p Policy) Jittered(n int) time.Duration {
	d := p.Delay(n)
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	spread := time.Duration(float64(d) * p.Jitter)
	j := time.Duration(rand.Int64N(int64(spread) + 1))
	if p.Centered {
		j -= spread / 2
	}
	return d + j
}

// Start begins a series of tries; call it just before the first one.
func (p Policy) Start() *Retrier {
	return &Retrier{p: p, tries: 1, start: time.Now()}
}

// Retrier counts the tries of one operation under a Policy. Use it as
//
//	r := p.Start()
//	for {
//		err := try()
//		if err == nil || !worthRetrying(err) {
//			return err
//		}
//		if werr := r.Wait(ctx); werr != nil {
//			return ... // ErrExhausted, or ctx ended while waiting
//		}
//	}
type Retrier struct {
	p     Policy
	tries int
	start time.Time
}

// Tries is how many tries have been made so far (1 before the first Wait).
func (r *Retrier) Tries() int { return r.tries }

// Waited is the time since the first try began.
func (r *Retrier) Waited() time.Duration { return time.Since(r.start) }

// Wait waits before the next try and counts it. It returns ErrExhausted
// at once when the policy allows no more tries, and ctx's error when ctx
// ends first.
func (r *Retrier) Wait(ctx context.Context) error {
	if r.p.For > 0 {
		if r.Waited() >= r.p.For {
			return ErrExhausted
		}
	} else if r.tries > r.p.Retries {
		return ErrExhausted
	}
	sleep := r.p.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	if err := sleep(ctx, r.p.Jittered(r.tries-1)); err != nil {
		return err
	}
	r.tries++
	return nil
}
