// Package pveschema checks pct and qm options the way Proxmox VE's
// parameter verification does (pve-common's PVE::JSONSchema): the option
// names of an endpoint, each value's type, range, enum, pattern and named
// format, and property strings (net[n], mp[n], rootfs, features, startup,
// dev[n], scsi[n], ipconfig[n], ...) key by key. It also knows
// pve-container's whitelist of raw lxc.* config keys.
//
// The schema is Proxmox's own, embedded: data/pve-8.json and
// data/pve-9.json hold the parameters of the create, config, clone, resize,
// snapshot and template endpoints of LXC containers and QEMU VMs (the
// options `pct create/set/clone` and `qm create/set/clone` take), extracted
// from pve-docs' API viewer data by hack/pveschema-gen (see data/README.md).
//
// Errors read as Proxmox prints them:
//
//	400 Parameter verification failed.
//	cores: type check ('integer') failed - got 'many'
//
// Named formats registered in Perl code (pve-configid, dns-name, mac-addr,
// pve-startup-order, ipv4/ipv6 and their CIDR and network configurations,
// disk sizes, storage, bridge and pool IDs, pve-qm-ipconfig, ...) are
// implemented here; a format this package does not know accepts any value,
// so the check is never stricter than Proxmox.
package pveschema
