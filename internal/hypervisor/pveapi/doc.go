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
// the cluster once per operation; creates, clones and destroys drop it, and
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
// there, or a small sh/awk editor of /etc/pve/lxc/<id>.conf that takes
// pct's own config flock and touches only the lxc.* lines of the main
// section (rawEditScript). Host setup steps run on every node the same
// way. This is how other Proxmox automation reaches containers too. Without
// SSH configured (SSHOptions.KeyFile empty) those steps fail with a message
// saying so (ErrNeedSSH), before anything is created. VMs need no SSH:
// scripts run through the guest agent endpoints (agent/exec,
// agent/exec-status).
//
// # The client and its quirks
//
// Requests go through github.com/luthermonson/go-proxmox (v0.8.x) for
// authentication, JSON bodies and task polling, with these corrections:
//
//   - Task.Wait returns nil when a task failed (it only waits for the
//     status "stopped"); the exit status is checked here, "OK" and
//     "WARNINGS: n" being success (TaskError otherwise);
//   - a config PUT, and a container's template conversion, return no task;
//     a write that gets no UPID back is done when its request returns;
//   - the library turns a 500 into a bare error string and loses the body;
//     an http.RoundTripper (errorTransport) reads every error response
//     first and returns an *APIError with the status, the status-line
//     message, the body's message and 400's per-parameter errors;
//   - its AgentExec drops the API's error, so the agent endpoints are
//     called directly (still through the library's client);
//   - its default logger writes to the process's stderr; it is silenced.
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
// VM.Config.*, VM.PowerMgmt, VM.Snapshot, Datastore.AllocateSpace,
// Sys.Audit for the node list, and the guest agent's privilege for VM
// scripts). Proxmox lets only root@pam change container features other
// than nesting (pct_options) and device passthrough (gpu_assignment), so
// labs using those need a root@pam token without privilege separation.
//
// internal/fake/pveapi is a fake multi-node cluster this package is tested
// against; it does not check privileges.
package pveapi
