package lock

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"
)

// Shared is an exclusive flock on one open file that the goroutines of a
// process hold together. flock belongs to the open file, which they
// share: the first goroutine in takes it and the last one out lets it go.
// Letting go at each one's end would free it while another goroutine was
// still inside, and taking it per goroutine costs two system calls each.
//
// A process whose goroutines overlap without a break would keep other
// processes out for as long as it is busy. With MaxHold set, no goroutine
// joins a hold older than that: the holders drain, the flock is let go,
// and it is taken again only two polls later, so that a process polling
// for it gets its turn.
type Shared struct {
	// F is the flock'd file; Poll how often a wait for it tries again
	// (PollInterval when 0); MaxHold, when set, bounds a hold (above).
	F       *os.File
	Poll    time.Duration
	MaxHold time.Duration

	mu       sync.Mutex
	cond     *sync.Cond
	holders  int
	since    time.Time // when the flock was taken
	draining bool
	drained  time.Time // when a drained hold let the flock go
}

// Hold joins the process's hold, taking the flock when nobody of this
// process holds it; taken reports that it was taken just now, so that
// other processes may have changed what it guards since this one last
// held it.
func (s *Shared) Hold() (taken bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	for s.draining {
		s.cond.Wait()
	}
	poll := s.Poll
	if poll <= 0 {
		poll = PollInterval
	}
	if s.holders == 0 {
		if wait := 2*poll - time.Since(s.drained); wait > 0 {
			time.Sleep(wait)
		}
		if err := Flock(context.Background(), s.F, syscall.LOCK_EX, poll, time.Time{}); err != nil {
			return false, err
		}
		s.since, taken = time.Now(), true
	} else if s.MaxHold > 0 && time.Since(s.since) > s.MaxHold {
		s.draining = true
	}
	s.holders++
	return taken, nil
}

// Release leaves the process's hold, letting the flock go when the last
// holder leaves.
func (s *Shared) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holders--
	if s.holders > 0 {
		return
	}
	Unflock(s.F)
	if s.draining {
		s.draining = false
		s.drained = time.Now()
		s.cond.Broadcast()
	}
}
