// Package pveapi drives a Proxmox VE cluster through its REST API
// (https://HOST:8006/api2/json), so that phoenix reaches every node of a
// cluster and not only the one it runs on. It implements hypervisor.Host,
// hypervisor.SetupRunner and hypervisor.Placer, with the same workflows and
// idempotence as the pve (pct/qm) backend: only the way operations reach
// the nodes differs.
//
// # Placement
//
// Guest IDs are cluster-wide: a guest is found with GET /cluster/resources
// wherever it lives, and operations on it go to that node. The list is
// reused for a moment (Options.IndexTTL) so that a big lab does not list
// the cluster once per operation, and it answers State
// (hypervisor.StateReader) on its own: a pass that checks every guest, as
// a controller resync does, costs one request, and config and snapshots
// are read only for guests that need work; creates, clones and destroys drop it, and
// a guest the list misses, or whose node says it does not exist, is looked
// up again before anything is concluded. Where a new guest
// goes is desired state the Host methods do not carry, so the Host
// implements hypervisor.Placer: the caller hands it the loaded api.Config
// (the CLI does so when it opens the backend; a long-running caller does
// again after each reload). A guest is created on, in order: its "node"
// field; for a clone, its source's node (a node field naming another node
// makes a cross-node clone, with the API's target parameter, which Proxmox
// allows when the source's disks are on shared storage); Options.DefaultNode
// (--pve-default-node); the only node of a one-node cluster. A guest that
// exists already is never moved, whatever its node field says.
//
// # What the API cannot do: SSH
//
// The API has no exec for containers (pct exec is command-line only) and no
// parameter for raw lxc.* config keys (lxc_options, apparmor_profile). For
// those, phoenix connects to the guest's node over SSH
// (golang.org/x/crypto/ssh, public-key auth, host keys always checked
// against a known_hosts file, never trust-on-first-use) and runs pct exec
// there, or reads /etc/pve/lxc/<id>.conf, edits its lxc.* lines with the
// editor the pve backend uses (guest.EditRaw) and writes it back under
// pct's own config flock only if it did not change meanwhile
// (rawWriteScript). The old tree's host-side scripts run on the guest's
// node, and host setup steps on every node, the same way. This is how
// other Proxmox automation reaches containers too. Without
// SSH configured (SSHOptions.KeyFile empty) those steps fail with a message
// saying so (ErrNeedSSH), before anything is created. VMs need no SSH:
// scripts run through the guest agent endpoints (agent/exec,
// agent/exec-status).
//
// # The client
//
// A small client of its own (client.go) covers the endpoints phoenix
// calls, as bpg/terraform-provider-proxmox does: typed answers, one retry
// policy, one task waiter. It replaced github.com/luthermonson/go-proxmox,
// around which phoenix had grown a layer for every turn (an error
// transport to recover lost errors, a silenced logger, a guard against
// short UPIDs, its own exit-status check) and which panicked on a task
// status without upid and node. No answer of any shape can crash phoenix:
//
//   - every answer is read whole up to a size limit (16 MiB) within the
//     request's timeout, so a body that never ends is cut;
//   - an answer that is not the API's JSON envelope (an HTML page from a
//     proxy, a truncated body) is an error naming the endpoint, its
//     Content-Type and its first bytes;
//   - each answer phoenix reads has a type whose check() method refuses
//     what phoenix would use wrongly (a guest list entry without vmid or
//     with a node that is not a node name, a task status without status,
//     a snapshot without name), and a GET answering {"data": null} fails;
//   - error answers keep the status, the status-line message Proxmox puts
//     there, the body's message and 400's per-parameter errors (APIError);
//     a redirect is not followed (the token goes only to the URL given);
//   - a task is followed with the UPID the write answered, parsed as
//     Proxmox's upid_decode does; its status answer needs only "status"
//     and "exitstatus" ("OK" and "WARNINGS: n" are success).
//
// Recorded answers of PVE 7, 8 and 9 for every endpoint (testdata/answers)
// and a fuzz target (FuzzAnswer, in make fuzz) check this.
//
// A container's template conversion and a config PUT answer with no
// task: such a write is done when its request returns.
//
// Every request has a timeout (Options.Timeout). Failures that retrying can
// fix are retried with exponential backoff and jitter: lock contention
// ("CT is locked (disk)", "can't lock file ... got timeout", in a response
// or in a task's exit status), 5xx other than a plain 500 (Proxmox reports
// permanent failures as 500 too, so a 500 is retried only when its text says
// timeout or try again), and dropped connections (a POST only when it
// certainly never reached the server). A node that lets a request time out
// is failed fast for a while (Options.NodeDownFor), so that its guests fail
// with a clear error while guests on the other nodes finish. Writes and
// their tasks are bounded per node (Options.NodeConcurrency); reads are not.
//
// Errors name the guest, the operation, the node and the endpoint, e.g.
// "lxc 941: start on node pve2: POST /nodes/pve2/lxc/941/status/start: 500
// CT is locked (disk) (gave up after 5 tries)".
//
// # Credentials
//
// The API token is read from a file only its owner can read (LoadToken
// refuses others) and never appears in an error, a log line or output: the
// secret is unexported and Token's String redacts it. TLS is verified
// against the system roots or Options.CAFile; Options.Insecure turns that
// off only when asked; http:// URLs work, for test clusters on loopback,
// and callers should warn (Options.PlainHTTP).
//
// The token needs the privileges of what it does (VM.Allocate, VM.Clone,
// VM.Config.*, VM.PowerMgmt, VM.Snapshot, VM.Audit to see guests at all,
// Datastore.AllocateSpace, Sys.Audit for the node list, and the guest
// agent's privilege for VM scripts: VM.Monitor on PVE 8,
// VM.GuestAgent.Unrestricted on PVE 9). Some things Proxmox lets only the
// user root@pam do, and a token's user is root@pam!name at best, so no
// token may do them, whatever its privileges or privilege separation:
// dev[n], container features other than nesting (any feature of a
// privileged container), and a template or image named by its path.
// phoenix sets the first two with pct set over SSH, and refuses the last
// (and the first two without SSH) before anything runs (CheckConfig).
// Writes that allocate disks (create, clone, resize) are never retried
// blindly: the cluster is re-read first, since a failed attempt may have
// done the work.
//
// internal/fake/pveapi is a fake multi-node cluster this package is tested
// against; like Proxmox with a token, it refuses what only root@pam may
// do and hides guests the token may not audit.
package pveapi
