// Package pvestorage knows what each Proxmox VE storage type can do for a
// guest's volumes: snapshots, linked clones and full copies of a
// snapshot. Both Proxmox backends (pct/qm and the REST API) and the fake
// cluster plan with this one table, so they refuse the same plans.
package pvestorage
