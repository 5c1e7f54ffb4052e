package statelock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// FileName is the lock file's name inside the state dir.
const FileName = "controller.lock"

// pollInterval is how often a waiting caller tries the lock again. flock
// itself cannot be interrupted by a context, so waiting is done by polling.
const pollInterval = 50 * time.Millisecond

// Holder describes the controller that holds the lock.
type Holder struct {
	// PID is the controller's process ID; 0 when it did not write it yet.
	PID int
	// ConfigDir is the absolute config dir the controller watches, or "".
	ConfigDir string
}

// HeldError is the refusal when a controller holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	Holder
}

func (e *HeldError) Error() string {
	who := "a phoenix controller"
	if e.PID > 0 {
		who = fmt.Sprintf("a phoenix controller (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s is running on this state dir and holds %s", who, e.Path)
}

// Lock is a held lock; Release drops it.
type Lock struct {
	f    *os.File
	excl bool
}

// Path is the lock file of a state dir.
func Path(stateDir string) string { return filepath.Join(stateDir, FileName) }

func open(stateDir string) (*os.File, error) {
	if err := fsutil.MkdirPrivate(stateDir); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return fsutil.OpenNoFollow(Path(stateDir), os.O_CREATE|os.O_RDWR, 0o600)
}

// AcquireController takes the lock for a controller watching configDir and
// writes "<pid>\n<configDir>\n" into it. When another controller holds it,
// it returns a *HeldError at once. When one-shot CLI verbs hold it (shared),
// it calls waiting once and waits for them to finish, or for ctx.
func AcquireController(ctx context.Context, stateDir, configDir string, waiting func()) (*Lock, error) {
	f, err := open(stateDir)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		ok, err := lock.TryFlock(f, syscall.LOCK_EX)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if ok {
			break
		}
		if h := readHolder(f.Name()); h.PID > 0 && alive(h.PID) {
			f.Close()
			return nil, &HeldError{Path: f.Name(), Holder: h}
		}
		// No live controller pid: one-shot verbs hold it shared (or a
		// controller has just taken it and not written its pid yet; the
		// next round sees the pid).
		if !told && waiting != nil {
			waiting()
			told = true
		}
		if err := retry.Sleep(ctx, pollInterval); err != nil {
			f.Close()
			return nil, err
		}
	}
	content := strconv.Itoa(os.Getpid()) + "\n" + configDir + "\n"
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(content), 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			lock.Unflock(f)
			f.Close()
			return nil, fmt.Errorf("write %s: %w", f.Name(), err)
		}
	}
	return &Lock{f: f, excl: true}, nil
}

// AcquireShared takes the lock for a one-shot verb that changes guests. When
// a controller holds it, it waits up to wait (0: not at all) and then
// returns a *HeldError naming the controller.
func AcquireShared(ctx context.Context, stateDir string, wait time.Duration) (*Lock, error) {
	f, err := open(stateDir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		ok, err := lock.TryFlock(f, syscall.LOCK_SH)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if ok {
			// No controller runs: a pid left in the file is stale. Clearing
			// it is safe under a shared lock, since only a controller (which
			// would need the lock exclusively) ever writes it.
			if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
				_ = f.Truncate(0)
			}
			return &Lock{f: f}, nil
		}
		if !time.Now().Before(deadline) {
			h := readHolder(f.Name())
			f.Close()
			return nil, &HeldError{Path: f.Name(), Holder: h}
		}
		if err := retry.Sleep(ctx, min(pollInterval, time.Until(deadline))); err != nil {
			f.Close()
			return nil, err
		}
	}
}

// Running reports the controller running on stateDir, if one holds the
// lock. It takes nothing: the answer may change right after.
func Running(stateDir string) (Holder, bool, error) {
	f, err := os.Open(Path(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, err
	}
	defer f.Close()
	ok, err := lock.TryFlock(f, syscall.LOCK_SH)
	if err != nil {
		return Holder{}, false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if ok {
		return Holder{}, false, nil
	}
	return readHolder(f.Name()), true, nil
}

// Release drops the lock. A controller clears its pid first, so that the
// file does not name a process that no longer holds it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	if l.excl {
		_ = l.f.Truncate(0)
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

func readHolder(path string) Holder {
	f, err := os.Open(path)
	if err != nil {
		return Holder{}
	}
	defer f.Close()
	var h Holder
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		h.PID, _ = strconv.Atoi(strings.TrimSpace(sc.Text()))
	}
	if sc.Scan() {
		h.ConfigDir = strings.TrimSpace(sc.Text())
	}
	return h
}

// alive reports whether a process with that pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
