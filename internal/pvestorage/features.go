package pvestorage

import (
	"slices"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Feature is a storage capability phoenix plans with.
type Feature string

// The features phoenix plans with.
const (
	Snapshot     Feature = "snapshot"
	LinkedClone  Feature = "linked clone"
	CopySnapshot Feature = "full copy of a snapshot"
)

// Supports reports whether a storage type can do feat for a guest kind,
// after pve-storage's volume_has_feature: block and ZFS storages snapshot
// and share base volumes; file storages only for VM disks, which are
// qcow2 there, while container volumes are raw files or folders. A
// container's full clone from a snapshot mounts the snapshot and copies
// files, which works wherever the snapshot exists; a VM's is copied by the
// storage, which ZFS cannot do from a snapshot. An unknown type is assumed
// able: Proxmox is the judge then.
func Supports(typ string, kind api.Kind, feat Feature) bool {
	file := slices.Contains([]string{"dir", "nfs", "cifs", "glusterfs", "cephfs"}, typ)
	switch feat {
	case Snapshot, LinkedClone:
		switch {
		case slices.Contains([]string{"zfspool", "lvmthin", "rbd", "btrfs", "zfs"}, typ):
			return true
		case file:
			return kind == api.KindVM
		case typ == "lvm":
			return false
		}
	case CopySnapshot:
		if kind == api.KindLXC {
			return true
		}
		return typ != "zfspool" && typ != "zfs" && typ != "lvm"
	}
	return true
}
