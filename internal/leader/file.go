package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// File is the pmxcfs lock's contract on one machine, for controllers that
// share a state dir without a cluster file system. Three files in the
// state dir make it:
//
//   - <name>.lease: who holds the lock and when they last renewed it
//     (JSON, replaced atomically). The lock is held by whoever it names
//     until lease has passed since the renewal; then anyone may take it,
//     and the old holder's next renewal fails.
//   - <name>.lock: flocked for the moment the lease is read and changed,
//     so two processes never both take a free lease.
//   - <name>.alive: flocked by the holder for as long as it leads. The
//     kernel drops it when the holder dies, so a standby takes over from a
//     killed leader at its next try instead of after the lease; a holder
//     that is alive but stuck loses the lock only when its lease runs out.
type File struct {
	dir, name string
	lease     time.Duration
	clock     clock.PassiveClock
	id        string

	held  bool
	alive *os.File
}

// record is the content of <name>.lease.
type record struct {
	Holder  string    `json:"holder"`
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Renewed time.Time `json:"renewed"`
	// Lease is the holder's --leader-lease: the holder's promise, so it
	// decides when the record expires, whatever lease a standby was given.
	Lease time.Duration `json:"lease"`
	// Alive says the holder holds <name>.alive: only then does a free
	// liveness flock prove the holder dead.
	Alive bool `json:"alive"`
}

// NewFile returns the lock name in dir with the given lease. A nil clk is
// the real clock.
func NewFile(dir, name string, lease time.Duration, clk clock.PassiveClock) (*File, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("leader lease %s: want more than 0", lease)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &File{dir: dir, name: name, lease: lease, clock: clk, id: hex.EncodeToString(b[:])}, nil
}

// String implements Lock.
func (l *File) String() string { return "file lock " + l.path(".lease") }

// Lifetime implements Lock.
func (l *File) Lifetime() time.Duration { return l.lease }

func (l *File) path(ext string) string { return filepath.Join(l.dir, l.name+ext) }

// TryAcquire implements Lock.
func (l *File) TryAcquire(ctx context.Context) (bool, error) {
	if l.held {
		return true, l.Renew(ctx)
	}
	unlock, err := l.mutex(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	rec, err := l.read()
	if err != nil {
		return false, err
	}
	alive, err := l.takeAlive()
	if err != nil {
		return false, err
	}
	now := l.clock.Now()
	free := rec.Holder == "" || (alive && rec.Alive) || now.Sub(rec.Renewed) >= rec.Lease
	if !free {
		l.dropAlive()
		return false, nil
	}
	if err := l.write(now); err != nil {
		l.dropAlive()
		return false, err
	}
	l.held = true
	return true, nil
}

// Renew implements Lock.
func (l *File) Renew(ctx context.Context) error {
	if !l.held {
		return fmt.Errorf("renew %s: not held: %w", l, ErrLost)
	}
	unlock, err := l.mutex(ctx)
	if err != nil {
		l.lose()
		return fmt.Errorf("renew %s: %w: %w", l, err, ErrLost)
	}
	defer unlock()
	rec, err := l.read()
	now := l.clock.Now()
	switch {
	case err != nil:
		err = fmt.Errorf("renew %s: %w: %w", l, err, ErrLost)
	case rec.Holder != l.id:
		err = fmt.Errorf("renew %s: taken over by pid %d on %s: %w", l, rec.PID, rec.Host, ErrLost)
	case now.Sub(rec.Renewed) >= l.lease:
		err = fmt.Errorf("renew %s: last renewed %s ago, beyond the %s lease: %w",
			l, now.Sub(rec.Renewed).Round(time.Millisecond), l.lease, ErrLost)
	default:
		if l.alive == nil {
			// Taken over from a stuck holder: claim the liveness flock
			// once it lets go, so that our own death is noticed at once.
			_, _ = l.takeAlive()
		}
		if werr := l.write(now); werr != nil {
			err = fmt.Errorf("renew %s: %w: %w", l, werr, ErrLost)
		}
	}
	if err != nil {
		l.lose()
		return err
	}
	return nil
}

// Release implements Lock.
func (l *File) Release() error {
	if !l.held {
		return nil
	}
	defer l.lose()
	unlock, err := l.mutex(context.Background())
	if err != nil {
		return fmt.Errorf("release %s: %w", l, err)
	}
	defer unlock()
	rec, err := l.read()
	if err != nil || rec.Holder != l.id {
		return err
	}
	if err := os.Remove(l.path(".lease")); err != nil {
		return fmt.Errorf("release %s: %w", l, err)
	}
	return nil
}

func (l *File) lose() {
	l.held = false
	l.dropAlive()
}

// mutex flocks <name>.lock, waiting for it or ctx; the returned func
// unlocks it.
func (l *File) mutex(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(l.path(".lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock.Flock(ctx, f, syscall.LOCK_EX, 0, time.Time{}); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// takeAlive tries the liveness flock: true when this process now holds it,
// which means no other holder is alive.
func (l *File) takeAlive() (bool, error) {
	if l.alive != nil {
		return true, nil
	}
	f, err := os.OpenFile(l.path(".alive"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return false, err
	}
	ok, err := lock.TryFlock(f, syscall.LOCK_EX)
	if !ok || err != nil {
		f.Close()
		if err != nil {
			return false, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		return false, nil
	}
	l.alive = f
	return true, nil
}

func (l *File) dropAlive() {
	if l.alive != nil {
		l.alive.Close()
		l.alive = nil
	}
}

// read returns the lease record; a missing or torn one is free.
func (l *File) read() (record, error) {
	var rec record
	data, err := os.ReadFile(l.path(".lease"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		// Only a crash of the machine leaves a torn record (it is written
		// by rename but not fsynced), and then nobody holds it.
		return record{}, nil
	}
	return rec, nil
}

func (l *File) write(now time.Time) error {
	host, _ := os.Hostname()
	data, err := json.Marshal(record{Holder: l.id, PID: os.Getpid(), Host: host, Renewed: now, Lease: l.lease, Alive: l.alive != nil})
	if err != nil {
		return err
	}
	// Not fsynced: the record only matters while its holder runs, and a
	// machine that crashed restarts with no holder alive. A renewal must
	// not wait for a busy disk.
	return fsutil.WriteFileNoSync(l.path(".lease"), append(data, '\n'), 0o600)
}
