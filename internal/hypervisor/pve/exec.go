package pve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// killGrace is how long a command has between SIGTERM and SIGKILL once its
// timeout expires: pct and qm clean up their own locks on SIGTERM.
var killGrace = 5 * time.Second

// maxBackoff caps the wait between lock retries.
const maxBackoff = 30 * time.Second

// Output kept from one command: enough for a config or a guest exec reply,
// bounded so a chatty script cannot exhaust memory.
const (
	maxStdout = 16 << 20
	maxStderr = 64 << 10
)

// CommandError is a pct, qm or host script command that failed.
type CommandError struct {
	// Argv is the command line as run.
	Argv []string
	// ExitCode is the exit status, or -1 when the command did not exit by
	// itself (killed on timeout, or could not be started).
	ExitCode int
	// Output is the tail of the command's stderr; for commands run in a
	// guest, of its stdout and stderr together.
	Output string
	// Tries is how often the command was run: more than 1 after lock retries.
	Tries int
	// Waited is how long lock retries went on.
	Waited time.Duration
	// Timeout is set when the command was killed on its timeout.
	Timeout time.Duration
	// Err is the underlying error: *exec.ExitError, context.DeadlineExceeded,
	// context.Canceled, or the error of starting the command.
	Err error
	// kind is hypervisor.ErrNotFound, hypervisor.ErrLocked or nil.
	kind error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	if e.kind != nil {
		b.WriteString(e.kind.Error())
		if e.kind == hypervisor.ErrLocked && e.Tries > 1 {
			fmt.Fprintf(&b, " (still locked after %d tries over %s)", e.Tries, e.Waited.Round(time.Second))
		}
		b.WriteString(": ")
	}
	b.WriteString("`" + formatArgv(e.Argv) + "`")
	switch {
	case e.Timeout > 0:
		fmt.Fprintf(&b, " timed out after %s and was killed", e.Timeout)
	case errors.Is(e.Err, context.Canceled):
		b.WriteString(" was cancelled and killed")
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, " exited %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, " failed: %v", e.Err)
	}
	if e.Output != "" {
		b.WriteString(": ")
		b.WriteString(e.Output)
	}
	b.WriteString(unlockHint(e.Argv, e.Output))
	return b.String()
}

// Unwrap lets errors.Is find hypervisor.ErrNotFound, hypervisor.ErrLocked
// and context errors.
func (e *CommandError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// runOpts says how to run one command.
type runOpts struct {
	// stdin is fed to the command; nil means /dev/null.
	stdin []byte
	// inGuest marks commands whose output is a guest command's (pct exec,
	// qm guest exec) or a host script's: their output is kept as one stream,
	// and is never taken for a lock message, since retrying would run the
	// script again.
	inGuest bool
	// timeout replaces Options.Timeout when longer: commands that copy
	// disks take time by their size.
	timeout time.Duration
	// started, when set, is told the process group of the command once it
	// runs (each try), for the intent record of a command that locks a
	// guest.
	started func(pgid int) error
	// lockWait, when set, keeps retrying a lock for that long rather than
	// LockRetries times: a clone waiting for another clone of the same
	// source must wait as long as a copy of that source takes.
	lockWait time.Duration
}

// result is what a command printed.
type result struct {
	stdout []byte
	// output is stderr, or stdout and stderr interleaved for inGuest commands.
	output []byte
}

// run runs argv, retrying while the host reports a lock. A lock error means
// the tool refused before changing anything, so the retry is safe; it is
// what other Proxmox automation most often trips over when it works on
// several guests at once.
func (h *Host) run(ctx context.Context, argv []string, o runOpts) (*result, error) {
	r := h.lockPolicy(o.lockWait).Start()
	for {
		res, err := h.runOnce(ctx, argv, o)
		var ce *CommandError
		if err == nil || !errors.As(err, &ce) || ce.kind != hypervisor.ErrLocked {
			return res, err
		}
		ce.Tries = r.Tries()
		ce.Waited = r.Waited()
		if werr := r.Wait(ctx); werr != nil {
			if errors.Is(werr, retry.ErrExhausted) {
				return res, ce
			}
			return res, fmt.Errorf("%w; gave up waiting: %w", ce, werr)
		}
	}
}

// lockPolicy is how a command refused by a lock is retried: LockRetries
// times, or for lockWait when set, LockBackoff doubling up to maxBackoff,
// with jitter so that clones waiting on one source do not retry in step.
func (h *Host) lockPolicy(lockWait time.Duration) retry.Policy {
	return retry.Policy{Initial: h.opts.LockBackoff, Factor: 2, Max: maxBackoff, Jitter: 0.5,
		Retries: h.opts.LockRetries, For: lockWait}
}

// runOnce runs argv once under its own timeout.
func (h *Host) runOnce(ctx context.Context, argv []string, o runOpts) (*result, error) {
	if h.opts.Log != nil {
		h.opts.Log(slices.Clone(argv))
	}
	timeout := max(h.opts.Timeout, o.timeout)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	// pct and qm fork workers, and host scripts start whatever they like:
	// the whole process group is signalled, not only the child.
	defer killProcessGroup(cmd)()
	cmd.WaitDelay = killGrace
	if o.stdin != nil {
		cmd.Stdin = bytes.NewReader(o.stdin)
	}
	stdout := &capBuffer{max: maxStdout}
	output := &capBuffer{max: maxStderr, keepTail: true}
	if o.inGuest {
		// One writer for both streams: exec then uses a single pipe, so
		// the tail shows them in the order they were written.
		stdout = &capBuffer{max: maxStdout, keepTail: true}
		output = stdout
	}
	cmd.Stdout = stdout
	cmd.Stderr = output
	err := cmd.Start()
	if err == nil {
		if o.started != nil {
			// The command runs in a group of its own (killProcessGroup):
			// its pid is the group's id.
			if serr := o.started(cmd.Process.Pid); serr != nil {
				// Without a record of the group a lock it leaves is not
				// provably phoenix's: it is reported, never cleared.
				h.notice(fmt.Sprintf("%s: intent record: %v", strings.Join(argv[:min(3, len(argv))], " "), serr))
			}
		}
		err = cmd.Wait()
	}
	res := &result{stdout: stdout.Bytes(), output: output.Bytes()}
	if err == nil {
		return res, nil
	}
	ce := &CommandError{Argv: argv, ExitCode: -1, Err: err, Output: guest.Tail(res.output)}
	switch {
	case ctx.Err() != nil:
		ce.Err = ctx.Err()
	case cctx.Err() != nil:
		ce.Err = context.DeadlineExceeded
		ce.Timeout = timeout
	default:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		}
	}
	if ce.ExitCode >= 0 {
		ce.kind = classify(res.output, o.inGuest, ce.ExitCode)
	}
	return res, ce
}

var (
	// notFoundRE is pct's and qm's message for a guest that does not exist
	// on this node: Configuration file 'nodes/pve/lxc/101.conf' does not exist.
	notFoundRE = regexp.MustCompile(`Configuration file '[^'\n]*(?:lxc|qemu-server)/\d+\.conf' does not exist`)
	// lockedRE matches the two messages Proxmox gives for a lock, each on
	// a line of its own: a guest lock (pve-guest-common's check_lock: "CT
	// is locked (disk)", "VM is locked (clone)") and a timed-out wait for
	// a config lock ("can't lock file '/var/lock/qemu-server/lock-101.conf'
	// - got timeout"). Other text that mentions a lock is not one.
	lockedRE = regexp.MustCompile(`(?m)^(?:(?:CT|VM) is locked \([a-z-]+\)|can't lock file '[^'\n]*' - got timeout)\s*$`)
)

// classify maps a tool's stderr to hypervisor.ErrNotFound or ErrLocked.
func classify(output []byte, inGuest bool, code int) error {
	if inGuest {
		// Only pct's or qm's own failure (255) about the guest itself, not
		// whatever the script printed.
		if code == 255 && notFoundRE.Match(firstLine(output)) {
			return hypervisor.ErrNotFound
		}
		return nil
	}
	switch {
	case notFoundRE.Match(output):
		return hypervisor.ErrNotFound
	case lockedRE.Match(output):
		return hypervisor.ErrLocked
	}
	return nil
}

func firstLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// formatArgv shows a command line for a person: the tool's base name, and
// arguments quoted only when they hold spaces or special characters.
func formatArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if i == 0 {
			a = filepath.Base(a)
		}
		if a == "" || strings.ContainsFunc(a, needsQuote) {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

func needsQuote(r rune) bool {
	return r <= ' ' || r > '~' || strings.ContainsRune(`"'\$;&|<>()*?[]{}!#~`+"`", r)
}

// capBuffer keeps at most max bytes of what is written to it: the first
// ones, or with keepTail the last ones. It never fails a write, so the
// command is not killed by a full buffer.
type capBuffer struct {
	buf      []byte
	max      int
	keepTail bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if c.keepTail {
		c.buf = append(c.buf, p...)
		if len(c.buf) > c.max {
			c.buf = append(c.buf[:0], c.buf[len(c.buf)-c.max:]...)
		}
		return n, nil
	}
	if room := c.max - len(c.buf); room < len(p) {
		p = p[:max(room, 0)]
	}
	c.buf = append(c.buf, p...)
	return n, nil
}

func (c *capBuffer) Bytes() []byte { return c.buf }
