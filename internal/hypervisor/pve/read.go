package pve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// maxConfSize bounds a config file read: Proxmox refuses to write one
// larger than its cluster file system's 1 MiB per file.
const maxConfSize = 1 << 20

// confPath is where Proxmox keeps a guest's config on this node.
func (h *Host) confPath(kind api.Kind, id api.ID) string {
	if kind == api.KindVM {
		return filepath.Join(h.opts.PVEEtc, "qemu-server", id.String()+".conf")
	}
	return filepath.Join(h.opts.LXCConfDir, id.String()+".conf")
}

// readConf reads and parses a guest's config file; hypervisor.ErrNotFound
// when there is none, as pct and qm say for a guest not on this node.
func (h *Host) readConf(kind api.Kind, id api.ID) (*guestConf, error) {
	path := h.confPath(kind, id)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: config file %s: %w", kind, id, path, hypervisor.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxConfSize+1)); err != nil {
		return nil, fmt.Errorf("%s %s: read %s: %w", kind, id, path, err)
	}
	if buf.Len() > maxConfSize {
		return nil, fmt.Errorf("%s %s: %s is larger than %d bytes", kind, id, path, maxConfSize)
	}
	return parseConf(buf.Bytes()), nil
}

// runState is one guest's line of pct list or qm list.
type runState struct {
	status string // running, stopped, paused, prelaunch, ...
}

// listCache keeps the running state of every guest of one kind from one
// `pct list` or `qm list`: one process per pass instead of one `status`
// per guest. It is fresh for ListTTL; a guest phoenix changed is dropped
// from it, and read again with `status` alone.
type listCache struct {
	mu      sync.Mutex
	at      time.Time
	states  map[api.ID]runState
	dropped map[api.ID]bool
	// changes counts forget calls per guest, so that a status read while
	// phoenix changed the guest is not kept.
	changes map[api.ID]int
}

// forget drops a guest's cached state after phoenix changed it.
func (h *Host) forget(kind api.Kind, id api.ID) {
	c := h.lists[kind]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped != nil {
		c.dropped[id] = true
	}
	if c.changes == nil {
		c.changes = map[api.ID]int{}
	}
	c.changes[id]++
}

// status returns a guest's state from the cached list, refreshing it when
// stale; a guest dropped from it, or missing from a list older than its
// config file, is asked for alone.
func (h *Host) status(ctx context.Context, kind api.Kind, id api.ID) (string, error) {
	c := h.lists[kind]
	if c == nil {
		return "", fmt.Errorf("unknown guest kind %q", kind)
	}
	c.mu.Lock()
	if c.states == nil || h.opts.ListTTL <= 0 || time.Since(c.at) >= h.opts.ListTTL {
		// One list for every guest of the pass; Gets meanwhile wait for it.
		if err := h.refreshList(ctx, kind, c); err != nil {
			c.mu.Unlock()
			return "", err
		}
	}
	if !c.dropped[id] {
		if st, ok := c.states[id]; ok {
			c.mu.Unlock()
			return st.status, nil
		}
	}
	before := c.changes[id]
	c.mu.Unlock()
	// Changed by phoenix since the list, or made after it: asked for alone,
	// without holding up the Gets of other guests.
	res, err := h.cmd(ctx, kind, id, "status", "status", id.String())
	if err != nil {
		return "", err
	}
	st, err := parseStatus(res.stdout)
	if err != nil {
		return "", fmt.Errorf("%s %s status: %w", kind, id, err)
	}
	c.mu.Lock()
	if c.changes[id] == before {
		c.states[id] = runState{status: st}
		delete(c.dropped, id)
	}
	c.mu.Unlock()
	return st, nil
}

func (h *Host) refreshList(ctx context.Context, kind api.Kind, c *listCache) error {
	bin, name, err := h.tool(kind)
	if err != nil {
		return err
	}
	res, err := h.run(ctx, []string{bin, "list"}, runOpts{})
	if err != nil {
		return fmt.Errorf("%s list: %w", name, err)
	}
	states, err := parseList(kind, res.stdout)
	if err != nil {
		return fmt.Errorf("%s list: %w", name, err)
	}
	c.states, c.at, c.dropped = states, time.Now(), map[api.ID]bool{}
	return nil
}

// parseList reads `pct list` (VMID Status Lock Name) or `qm list` (VMID
// NAME STATUS MEM(MB) BOOTDISK(GB) PID). A qm name may hold spaces ("VM
// 100" when none is set), so its status is taken counting from the right.
func parseList(kind api.Kind, out []byte) (map[api.ID]runState, error) {
	states := map[api.ID]runState{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	header := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if strings.EqualFold(f[0], "VMID") {
			header = true
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
		id := api.ID(n)
		switch {
		case kind == api.KindLXC && len(f) >= 2:
			states[id] = runState{status: f[1]}
		case kind == api.KindVM && len(f) >= 5:
			states[id] = runState{status: f[len(f)-4]}
		default:
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !header && len(states) > 0 {
		return nil, errors.New("no header line")
	}
	return states, nil
}

// Get reads the guest's settings, snapshots, template flag and lock from
// its config file, and whether it runs from the pass's guest list.
func (h *Host) Get(ctx context.Context, kind api.Kind, id api.ID) (*hypervisor.Guest, error) {
	conf, err := h.readConf(kind, id)
	if err != nil {
		return nil, err
	}
	if gone, err := h.clearLeftover(ctx, kind, id, conf); err != nil {
		return nil, err
	} else if gone {
		return nil, hypervisor.NotFound(kind, id)
	} else if conf.Current["lock"] == lockDisk && h.opts.Intents != nil {
		if conf, err = h.readConf(kind, id); err != nil {
			return nil, err
		}
	}
	st, err := h.status(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	disk := "rootfs"
	if kind == api.KindVM {
		disk = "scsi0"
	}
	fw, owned, err := h.readFirewall(id)
	if err != nil {
		return nil, err
	}
	return &hypervisor.Guest{
		ID:            id,
		Kind:          kind,
		Running:       isRunning(st),
		Template:      conf.Current["template"] == "1",
		Config:        conf.Current,
		Snapshots:     conf.snapshotOrder(),
		DiskGB:        diskGB(conf.Current[disk]),
		Firewall:      fw,
		FirewallOwned: owned,
	}, nil
}

// isRunning: a paused or prelaunch VM has its QEMU process; it is not
// stopped, and qm start would refuse it.
func isRunning(status string) bool { return status != "stopped" }
