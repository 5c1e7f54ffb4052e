package lock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// Proxmox marks a guest it is building with a lock in its config (pct
// create: "lock: create"; pct clone: "create" on the new container and
// "disk" on the source; qm create: "create"; qm clone: "clone" on the new
// VM) and clears it when the task ends. A task that is killed never clears
// it, and every later pct or qm command refuses the guest. Only the process
// that started the task knows the lock is its own, so phoenix writes an
// intent record before such a command, adds the command's process group
// once it runs, and removes the record when the command returns. A record
// that outlives both the phoenix process and every process of that group
// proves the lock is a leftover of phoenix's own that it may clear; while
// either runs (pct goes on when phoenix alone is killed), the lock is
// rightly held.

// Intent is the record of one lock-taking command, kept as
// <state-dir>/locks/<id> while the command runs.
type Intent struct {
	// PID and Start (the process's start time in clock ticks after boot,
	// field 22 of /proc/<pid>/stat) identify the process; Boot is the
	// kernel's boot ID, so neither a reused pid nor a reboot is mistaken
	// for the process that wrote the record.
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
	// PGID is the process group of the pct or qm command, once started:
	// phoenix starts each command in a group of its own, and the command
	// (and the workers it forks) goes on when phoenix is killed, holding
	// the lock rightly until it ends. Zero until the command started.
	PGID int `json:"pgid,omitempty"`
	// Host is the node the command ran on (a state dir may be shared).
	Host string `json:"host"`
	// Op is the command (create, clone); Kind and Lock the guest's kind
	// and the lock Proxmox sets on this ID while it runs.
	Op   string    `json:"op"`
	Kind api.Kind  `json:"kind"`
	Lock string    `json:"lock"`
	Time time.Time `json:"time"`
}

// Intents keeps intent records in one folder.
type Intents struct {
	dir  string
	self Intent
}

// NewIntents keeps records in dir, created owner-only when missing.
func NewIntents(dir string) (*Intents, error) {
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("intent records: %w", err)
	}
	self, err := selfIntent()
	if err != nil {
		return nil, fmt.Errorf("intent records: %w", err)
	}
	return &Intents{dir: dir, self: self}, nil
}

func selfIntent() (Intent, error) {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return Intent{}, err
	}
	host, err := os.Hostname()
	if err != nil {
		return Intent{}, err
	}
	return Intent{PID: pid, Start: start, Boot: bootID(), Host: host}, nil
}

func (x *Intents) path(id api.ID) string { return filepath.Join(x.dir, id.String()) }

// Pending is the record of a command about to run or running.
type Pending struct {
	path string
	rec  Intent
	// data is what was last written, so that Done removes the record only
	// while it is still this one.
	data []byte
}

// Begin records that this process is about to run op, which makes Proxmox
// set lock on guest id of kind. Call Started with the command's process
// group once it runs, and Done when it returned.
//
// A record of another process that still runs, or whose command does, is
// left in place and Begin returns a nil Pending (whose methods do
// nothing): two phoenix processes cloning one source both lock it, and
// the record must stay the one of the clone that holds the lock. The lock
// this command may leave is then not provably phoenix's, and is only ever
// reported.
func (x *Intents) Begin(kind api.Kind, id api.ID, op, lock string) (*Pending, error) {
	if data, err := fsutil.ReadFileNoFollow(x.path(id)); err == nil {
		var old Intent
		if json.Unmarshal(data, &old) == nil && old.PID > 0 && !x.own(old) && (alive(old) || (old.PGID > 0 && groupAlive(old.PGID))) {
			return nil, nil
		}
	}
	rec := x.self
	rec.Op, rec.Kind, rec.Lock, rec.Time = op, kind, lock, time.Now().UTC()
	p := &Pending{path: x.path(id), rec: rec}
	if err := p.write(); err != nil {
		return nil, fmt.Errorf("intent record of %s %s: %w", kind, id, err)
	}
	return p, nil
}

func (p *Pending) write() error {
	data, err := json.Marshal(p.rec)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(p.path, append(data, '\n'), 0o600); err != nil {
		return err
	}
	p.data = data
	return nil
}

// own reports whether rec was written by this process.
func (x *Intents) own(rec Intent) bool {
	return rec.PID == x.self.PID && rec.Start == x.self.Start && rec.Boot == x.self.Boot && rec.Host == x.self.Host
}

// Started records the process group of the command, started (again, for a
// retry). Until it is recorded the record proves nothing: a lock met then
// may be anyone's.
func (p *Pending) Started(pgid int) error {
	if p == nil {
		return nil
	}
	p.rec.PGID = pgid
	return p.write()
}

// Done removes the record, unless another process replaced it meanwhile.
func (p *Pending) Done() {
	if p == nil {
		return
	}
	if cur, err := fsutil.ReadFileNoFollow(p.path); err == nil && bytes.Equal(bytes.TrimSpace(cur), p.data) {
		_ = os.Remove(p.path)
	}
}

// Verdict says whether a guest lock may be cleared.
type Verdict int

const (
	// NoRecord: nothing says the lock is phoenix's.
	NoRecord Verdict = iota
	// OtherLock: the record is for another lock, kind or node.
	OtherLock
	// Alive: the phoenix process that took the lock still runs, or the
	// command it started does; or the record does not show the command
	// started.
	Alive
	// Dead: phoenix took the lock and the process that did is gone; the
	// lock is a leftover phoenix may clear.
	Dead
)

func (v Verdict) String() string {
	return [...]string{"no record", "record of another lock", "process alive", "process gone"}[v]
}

// Check reads the record of guest id and judges whether lock, found on
// it, is a leftover of a phoenix process that is gone. An unreadable or
// malformed record is NoRecord with the error.
func (x *Intents) Check(kind api.Kind, id api.ID, lock string) (*Intent, Verdict, error) {
	data, err := fsutil.ReadFileNoFollow(x.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, NoRecord, nil
	}
	if err != nil {
		return nil, NoRecord, err
	}
	var rec Intent
	if err := json.Unmarshal(data, &rec); err != nil || rec.PID <= 0 {
		return nil, NoRecord, fmt.Errorf("intent record %s: malformed", x.path(id))
	}
	if rec.Host != x.self.Host || rec.Kind != kind || rec.Lock != lock {
		return &rec, OtherLock, nil
	}
	if rec.PGID <= 0 || alive(rec) || groupAlive(rec.PGID) {
		return &rec, Alive, nil
	}
	return &rec, Dead, nil
}

// Remove deletes the record of guest id, once its lock is cleared.
func (x *Intents) Remove(id api.ID) error {
	if err := os.Remove(x.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// alive reports whether the process of rec still runs: same boot, and a
// process of that pid that started at that time.
func alive(rec Intent) bool {
	if b := bootID(); b != "" && rec.Boot != "" && b != rec.Boot {
		return false
	}
	start, err := procStart(rec.PID)
	if err != nil {
		// No such process. Any other error (no /proc) cannot prove the
		// process gone, so it counts as alive.
		return !errors.Is(err, os.ErrNotExist)
	}
	return start == rec.Start
}

// groupAlive reports whether any process of group pgid runs. A group
// whose id was reused by another one counts as alive: the error is on the
// side of leaving the lock.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// procRoot is /proc; a variable for tests.
var procRoot = "/proc"

// procStart reads a process's start time, field 22 of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted after its last ')'.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func bootID() string {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys", "kernel", "random", "boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
