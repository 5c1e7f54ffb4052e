package pve

import (
	"context"
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// The locks Proxmox sets while phoenix's commands run (pve-container and
// qemu-server): pct create and qm create lock the new guest "create"; pct
// clone locks the new container "create" and its source "disk"; qm clone
// locks the new VM "clone" (the source only with a flock, which dies with
// the process).
const (
	lockCreate = "create"
	lockClone  = "clone"
	lockDisk   = "disk"
)

// cloneLock is the lock a clone leaves on its new guest.
func cloneLock(kind api.Kind) string {
	if kind == api.KindVM {
		return lockClone
	}
	return lockCreate
}

// intend records, when the backend keeps intent records, that this
// process is about to run a command that makes Proxmox lock guest id. The
// record learns the command's process group through runOpts.started, and
// is removed by Done once the command returned. Nil without records.
func (h *Host) intend(kind api.Kind, id api.ID, op, lock string) (*lock.Pending, error) {
	if h.opts.Intents == nil {
		return nil, nil
	}
	return h.opts.Intents.Begin(kind, id, op, lock)
}

// clearLeftover clears a create, clone or disk lock on guest id that a
// phoenix process left when it was killed mid-command: its intent record
// names this lock, this node, and a process that is gone. A half-made
// guest (create or clone lock) is then destroyed with the disks of its ID,
// as Proxmox does itself when such a command fails, so that it is made
// again from scratch; a clone's source (disk lock) is only unlocked. gone
// says the guest was destroyed. Any other lock, a record of a live process
// or no record is left alone: the command that meets the lock reports it
// with the unlock command for the operator. Without intent records (a
// read-only run) nothing is done.
func (h *Host) clearLeftover(ctx context.Context, kind api.Kind, id api.ID, conf *guestConf) (gone bool, err error) {
	held := conf.Current["lock"]
	if h.opts.Intents == nil || (held != lockCreate && held != lockClone && held != lockDisk) {
		return false, nil
	}
	rec, verdict, err := h.opts.Intents.Check(kind, id, held)
	if err != nil || verdict != lock.Dead {
		// An unreadable record proves nothing: leave the lock.
		return false, nil
	}
	_, name, err := h.tool(kind)
	if err != nil {
		return false, err
	}
	if _, err := h.mutate(ctx, kind, id, "unlock", "unlock", id.String()); err != nil {
		return false, fmt.Errorf("clear the %s lock phoenix (pid %d, %s at %s) left on %s %s: %w", held, rec.PID, rec.Op, rec.Time.Format("2006-01-02T15:04:05Z"), kind, id, err)
	}
	h.notice(fmt.Sprintf("%s %s: cleared the %s lock left by an interrupted phoenix %s (pid %d, started %s, gone): `%s unlock %s`",
		kind, id, held, rec.Op, rec.PID, rec.Time.Format("2006-01-02T15:04:05Z"), name, id))
	if held != lockDisk {
		if _, err := h.mutate(ctx, kind, id, "destroy", "destroy", id.String(), "--purge", "--destroy-unreferenced-disks", "1"); err != nil {
			return false, fmt.Errorf("destroy the half-made %s %s left by an interrupted phoenix %s: %w", kind, id, rec.Op, err)
		}
		h.notice(fmt.Sprintf("%s %s: destroyed the half-made guest of that %s, with the disks of its ID; it is made again", kind, id, rec.Op))
		gone = true
	}
	if err := h.opts.Intents.Remove(id); err != nil {
		return gone, fmt.Errorf("intent record of %s %s: %w", kind, id, err)
	}
	return gone, nil
}

func (h *Host) notice(msg string) {
	if h.opts.Notice != nil {
		h.opts.Notice(msg)
	}
}
