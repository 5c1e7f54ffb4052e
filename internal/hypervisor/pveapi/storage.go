package pveapi

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
)

// storageList is GET /storage: each storage's ID and type.
type storageList []struct {
	Storage string `json:"storage"`
	Type    string `json:"type"`
}

func (l storageList) check() error {
	for i, s := range l {
		if s.Storage == "" {
			return fmt.Errorf("storage %d has no ID", i)
		}
	}
	return nil
}

// storageTypes reads each storage's type (dir, zfspool, lvmthin, nfs, ...)
// from the cluster's storage configuration. It is read per plan step, not
// cached: a storage can be added while the controller runs.
func (h *Host) storageTypes(ctx context.Context) (map[string]string, error) {
	var list storageList
	if err := h.c.get(ctx, "/storage", &list); err != nil {
		return nil, fmt.Errorf("read storage types: %w", err)
	}
	types := make(map[string]string, len(list))
	for _, s := range list {
		types[s.Storage] = s.Type
	}
	return types, nil
}

// volumeKeyRE matches the config keys that hold a guest's volumes.
var volumeKeyRE = regexp.MustCompile(`^(rootfs|mp\d+|scsi\d+|virtio\d+|sata\d+|ide\d+|efidisk0|tpmstate0)$`)

// volume is one volume of a guest config and the storage it lives on.
type volume struct{ key, storage string }

// volumes lists the volumes of a config, without bind mounts, device
// paths, CD-ROMs and cloud-init drives, which no storage feature concerns.
func volumes(cfg map[string]string) []volume {
	var out []volume
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[k]
		if !volumeKeyRE.MatchString(k) || strings.Contains(v, "media=cdrom") {
			continue
		}
		vol, _, _ := strings.Cut(v, ",")
		storage, _, ok := strings.Cut(vol, ":")
		if !ok || strings.HasPrefix(vol, "/") {
			continue
		}
		out = append(out, volume{k, storage})
	}
	return out
}

// cloneMode decides a clone's kind from what the source's storages can do,
// as the pve backend does: a template's disks are shared (linked clone)
// where every storage can, else copied (full). A full copy of a snapshot
// that a storage cannot make is refused before anything is written.
func (h *Host) cloneMode(ctx context.Context, kind api.Kind, src api.ID, loc *location, snapshot string, full bool) (bool, error) {
	var cfg guestConfig
	if err := h.c.get(ctx, loc.base+"/config", &cfg); err != nil {
		return false, fmt.Errorf("read config of %s %s: %w", kind, src, err)
	}
	full = full || cfg["template"] != "1"
	from := cfg
	if snapshot != "" {
		var snap guestConfig
		if err := h.c.get(ctx, loc.base+"/snapshot/"+url.PathEscape(snapshot)+"/config", &snap); err != nil {
			return false, fmt.Errorf("read snapshot %q of %s %s: %w", snapshot, kind, src, err)
		}
		from = snap
	}
	types, err := h.storageTypes(ctx)
	if err != nil {
		return false, err
	}
	vols := volumes(from)
	if !full {
		for _, v := range vols {
			if !pvestorage.Supports(types[v.storage], kind, pvestorage.LinkedClone) {
				full = true // the storage cannot share the template's disks
			}
		}
	}
	if full && snapshot != "" {
		for _, v := range vols {
			if t := types[v.storage]; !pvestorage.Supports(t, kind, pvestorage.CopySnapshot) {
				return false, fmt.Errorf("%s of %s %s is on storage %s (%s), which cannot make a full copy from snapshot %q; clone from a template or the current state instead",
					v.key, kind, src, v.storage, t, snapshot)
			}
		}
	}
	return full, nil
}

// checkSnapshot refuses a snapshot of a guest with a volume on a storage
// without snapshots, before anything is written.
func (h *Host) checkSnapshot(ctx context.Context, kind api.Kind, id api.ID, loc *location) error {
	var cfg guestConfig
	if err := h.c.get(ctx, loc.base+"/config", &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	types, err := h.storageTypes(ctx)
	if err != nil {
		return err
	}
	for _, v := range volumes(cfg) {
		if t := types[v.storage]; !pvestorage.Supports(t, kind, pvestorage.Snapshot) {
			return fmt.Errorf("%s is on storage %s (%s), which has no snapshots for %s guests; move it to a zfspool or lvmthin storage, or drop the snapshot from the plan",
				v.key, v.storage, t, kind)
		}
	}
	return nil
}
