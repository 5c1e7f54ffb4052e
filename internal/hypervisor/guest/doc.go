// Package guest is the protocol by which phoenix runs scripts for a guest,
// written once for every backend: which file goes where in the guest, with
// which mode, how a script is checked before it runs as root, which
// interpreter runs it, the old tool's run-in-a-folder way, waiting for a
// VM's guest agent and reading what the agent says about a command; and
// the editor of a container config's raw lxc.* lines (EditRaw), which
// neither pct set nor the API can write.
//
// How the bytes travel is left to small transports that the backends
// implement: Container (push a file, exec a command: pct locally, or pct on
// the guest's node over SSH), Agent (ping and exec through a VM's QEMU
// guest agent: qm guest exec locally, or the API's agent endpoints) and
// Node (run one of the old tree's host-side scripts on the Proxmox node
// that holds the guest).
package guest
