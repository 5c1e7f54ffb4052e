// Package hypervisor defines what phoenix needs from a Proxmox host, as one
// interface with a backend per way of reaching a host: sim (an embedded
// simulated node), pve (pct and qm on the host itself), pveapi (the Proxmox
// VE REST API of a multi-node cluster).
//
// Backends only carry out operations; deciding what to do is the
// reconcilers' job. Every operation names its guest by kind and ID.
package hypervisor
