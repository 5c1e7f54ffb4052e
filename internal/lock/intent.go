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
// intent record before such a command and removes it when the command
// returns: a record that outlives its process proves the lock is a
// leftover of phoenix's own that it may clear.

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

// Begin records that this process is about to run op, which makes Proxmox
// set lock on guest id of kind. The returned func removes the record,
// unless another process replaced it meanwhile.
func (x *Intents) Begin(kind api.Kind, id api.ID, op, lock string) (func(), error) {
	rec := x.self
	rec.Op, rec.Kind, rec.Lock, rec.Time = op, kind, lock, time.Now().UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	path := x.path(id)
	if err := fsutil.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("intent record of %s %s: %w", kind, id, err)
	}
	return func() {
		if cur, err := fsutil.ReadFileNoFollow(path); err == nil && bytes.Equal(bytes.TrimSpace(cur), data) {
			_ = os.Remove(path)
		}
	}, nil
}

// Verdict says whether a guest lock may be cleared.
type Verdict int

const (
	// NoRecord: nothing says the lock is phoenix's.
	NoRecord Verdict = iota
	// OtherLock: the record is for another lock, kind or node.
	OtherLock
	// Alive: the process that took the lock still runs.
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
	if alive(rec) {
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
