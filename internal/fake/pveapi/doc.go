// Package fakepveapi is a fake Proxmox VE cluster behind the REST API
// (/api2/json), for testing internal/hypervisor/pveapi and phoenix's pve-api backend
// without a cluster. A Cluster is an http.Handler: serve it with
// net/http/httptest in tests, or run cmd/fake-cluster (make fake-cluster)
// to point phoenix at it by hand.
//
// It models what phoenix depends on, the way Proxmox does it:
//
//   - several nodes and one guest ID space: /cluster/resources lists every
//     guest with its node, and /nodes/{node}/{lxc|qemu}/{vmid}/... on the
//     wrong node fails as Proxmox does ("Configuration file
//     'nodes/pve1/lxc/941.conf' does not exist");
//   - asynchronous work: create, clone, start, stop, shutdown, snapshot,
//     resize, destroy (and a VM's template) return a task UPID whose
//     /nodes/{node}/tasks/{upid}/status says "running" until the task is done
//     and then "stopped" with an exitstatus of "OK" or the error text. The
//     change is applied when the task ends. A config PUT is synchronous and
//     returns no task;
//   - locks: a guest being created or cloned is locked ("create"), a clone
//     source too ("disk" for a container, "clone" for a VM), a guest being
//     snapshotted ("snapshot"); touching a locked guest fails with
//     "CT is locked (disk)" / "VM is locked (clone)";
//   - errors as Proxmox sends them: HTTP 500 with the message in the status
//     line ("500 CT is locked (disk)") and in the body's "message", HTTP 400
//     "Parameter verification failed." with {"errors": {"field": "..."}},
//     HTTP 401 "No ticket" for a bad token;
//   - what the API cannot do: raw lxc.* keys are refused (400), as on a real
//     cluster; containers have no exec endpoint. Both are only reachable
//     over SSH to the node (StartSSH), which accepts the two commands
//     phoenix sends: pct exec and its raw-key editor;
//   - a cross-node clone (target) needs the source's disks on shared storage.
//
// Fault injection, for tests: InjectHTTP makes matching requests fail (5xx,
// lock errors), FailTask makes the next matching task end with an error
// exit status while its POST succeeded, SetNodeDown makes a node stop
// answering (its requests hang until the client gives up, its tasks stop
// progressing, /cluster/resources reports its guests "unknown"), and
// OnRequest runs a hook before each request is served. Requests,
// MaxRunningTasks and Guest let tests see what happened.
//
//   - a token is never root@pam: a template or image given by path (500
//     "Only root can pass arbitrary filesystem paths."), dev[n] and
//     container features other than nesting (403 "Permission check
//     failed (...)") are refused, as Proxmox refuses them to every token;
//     pct set over SSH runs as root and may set them;
//   - guests the token lacks VM.Audit on (Options.NoAudit) are missing
//     from /cluster/resources and their endpoints answer 403;
//   - a guest agent that answers only a while after its VM started
//     (Options.AgentDelay, SetAgentDelay).
//
// FilterAnswers rewrites successful answers (fields missing, nulls), and
// an HTTPFault with AfterServe does the work and then loses the answer.
//
// The token is compared, never logged or recorded.
//
// Every parameter of create, config, clone, resize, snapshot and template
// is checked against Proxmox's own schema (internal/pveschema) of the
// version the cluster plays (Options.Version, 8 or 9), and refused as
// Proxmox's RESTHandler refuses it: HTTP 400 "Parameter verification
// failed." with {"errors": {"<param>": "<reason>"}}, nothing changed.
//
// Storages have types (Options.Storages, also listed by /storage and
// /nodes/{node}/storage): a snapshot, a linked clone or a full copy of a
// snapshot that a volume's storage type cannot do fails as pve-storage
// makes it fail, by the table of internal/pvestorage. Volumes on storages
// not listed are not checked.
//
// What phoenix doctor reads is there too: storages' content types
// (Options.StorageContent), the volumes of a storage
// (Options.Volumes, GET .../storage/{storage}/content; a create from a
// volume not listed fails), the nodes' bridges (Options.Bridges, GET
// /nodes/{node}/network) and the token's ACL (Options.Permissions, GET
// /access/permissions; storages it may not see are left out of lists, and
// a create without VM.Allocate is refused).
//
// Guests have a firewall (.../firewall/options and .../firewall/rules):
// a new rule goes first and is disabled unless enable is sent, a rule is
// checked as pve-firewall's verify_rule does (ipsets, aliases and security
// groups do not exist, so a rule naming one is refused), and a clone
// copies its source's firewall.
//
// It does not model privileges other than the above, HA, migration, pools,
// or the pending-changes queue of running VMs.
package fakepveapi
