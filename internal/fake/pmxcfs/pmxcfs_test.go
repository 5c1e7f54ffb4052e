package pmxcfs

import (
	"errors"
	"syscall"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestLockRules walks pmxcfs' lock rules one operation at a time; each
// step runs on the state the steps before it left.
func TestLockRules(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := New("/etc/pve", clk)
	a, b := c.Node("a"), c.Node("b")
	const lock = "/etc/pve/priv/lock/x"
	now := func() int64 { return clk.Now().Unix() }
	for _, s := range []struct {
		name string
		do   func() error
		want error // nil, or the errno
		// after moves the clock after the step.
		after time.Duration
	}{
		{"a takes the lock", func() error { return a.Mkdir(lock) }, nil, 10 * time.Second},
		{"b cannot take it too", func() error { return b.Mkdir(lock) }, syscall.EEXIST, 0},
		{"b cannot renew a's lock", func() error { return b.Utime(lock, 0, now()) }, syscall.EACCES, 0},
		{"a renews", func() error { return a.Utime(lock, 0, now()) }, nil, 0},
		{"a cannot move it back in time", func() error { return a.Utime(lock, 0, now()-60) }, syscall.EACCES, Lifetime},
		{"unlock request within the lifetime: kept", func() error { return b.Utime(lock, 0, 0) }, syscall.EACCES, time.Second},
		{"unlock request past the lifetime: dropped", func() error { return b.Utime(lock, 0, 0) }, syscall.ENOENT, 0},
		{"b takes it", func() error { return b.Mkdir(lock) }, nil, 0},
		{"b loses quorum", func() error { c.SetQuorate("b", false); return nil }, nil, 0},
		{"b cannot renew without quorum", func() error { return b.Utime(lock, 0, now()) }, syscall.EACCES, 0},
		{"b cannot release without quorum", func() error { return b.Rmdir(lock) }, syscall.EACCES, 0},
		{"b cannot take another lock without quorum", func() error { return b.Mkdir(lock + "2") }, syscall.EACCES, 0},
		{"a cannot take b's lock before it expires", func() error { return a.Utime(lock, 0, 0) }, syscall.EACCES, Lifetime + time.Second},
		{"a drops it once it expired", func() error { return a.Utime(lock, 0, 0) }, syscall.ENOENT, 0},
		{"a takes it", func() error { return a.Mkdir(lock) }, nil, 0},
		{"a releases it", func() error { return a.Rmdir(lock) }, nil, 0},
		{"released: gone", func() error { return a.Rmdir(lock) }, syscall.ENOENT, 0},
		{"files are not modelled", func() error { return a.Mkdir("/etc/pve/phoenix") }, syscall.EACCES, 0},
	} {
		err := s.do()
		if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
		clk.Step(s.after)
	}
	if !a.IsDir("/etc/pve/priv/lock") || a.IsDir(lock) {
		t.Error("IsDir: want the lock folder and no lock")
	}
}
