// Package pve drives a real Proxmox VE host by running its own command-line
// tools: pct for LXC containers and qm for QEMU VMs. It implements
// hypervisor.Host and hypervisor.SetupRunner.
//
// Every command runs as an argv (os/exec), never through a shell, so guest
// names, options and lxc_options values reach pct and qm as single,
// unchanged arguments whatever characters they hold. Each command has its
// own timeout (Options.Timeout); when it expires, or the caller's context is
// cancelled, the command's whole process group gets SIGTERM and, after a
// grace period, SIGKILL.
//
// Errors name the operation, the guest and the command line, and end with
// the tail of the tool's stderr. Two kinds of failure are recognised and
// wrapped so errors.Is works: a missing guest ("Configuration file ...
// does not exist") is hypervisor.ErrNotFound; a lock ("CT is locked (disk)",
// "can't lock file ... got timeout") is hypervisor.ErrLocked, returned only
// after the command was retried with backoff Options.LockRetries times,
// because Proxmox refuses, rather than queues, work on a locked guest.
// A create, clone or disk lock left by a phoenix killed mid-command is
// cleared, and its half-made guest destroyed and made again, only when
// Options.Intents proves it phoenix's own and both that phoenix and its
// pct/qm gone (leftover.go); any other lock is reported with the unlock
// command for the operator.
//
// Raw LXC keys (lxc.apparmor.profile, lxc.mount.entry, ...) cannot be set
// with pct set. The backend writes them into the container's config file,
// <LXCConfDir>/<id>.conf (on a real host /etc/pve/lxc), the way an
// administrator would: it takes the same flock pct takes for that container
// (<LXCLockDir>/pve-config-<id>.lock), edits only the lxc.* lines of the
// current config (never the [snapshot] sections), and replaces the file
// with a temp file and a rename, as Proxmox itself writes configs. A value
// holding newlines becomes one line per value under that key, which is how
// repeated keys such as lxc.mount.entry are written and read back: Get joins
// repeated keys with "\n". No value can inject another key.
//
// Scripts (Run) must resolve inside Options.ScriptsDir and neither they nor
// the folders between them and ScriptsDir may be writable by group or
// others. In an LXC they are copied in with pct push and run with pct exec;
// in a VM they are written through the guest agent (qm guest exec
// --pass-stdin) and run with qm guest exec. The guest's JSON spec is pushed
// next to the script and passed as its first argument. The interpreter is
// taken from the script's #! line (sh when there is none).
//
// Reads start no process where Proxmox keeps the answer in a file: Get
// reads the guest's config file under Options.PVEEtc (/etc/pve on a host:
// lxc/<id>.conf, qemu-server/<id>.conf, parsed like pve-container and
// qemu-server do, snapshots ordered by their parent chain), and takes the
// running state from one `pct list`/`qm list` shared by every Get of a
// pass (Options.ListTTL); a guest this package changed is asked for alone
// with status. Storage types come from <PVEEtc>/storage.cfg, to plan
// linked or full clones and refuse snapshots and copies the storage
// cannot make, naming storage and guest.
//
// Some commands exit 0 when their task fails (pct push, pct resize, qm
// resize, qm template): the effect is read back and a missing one is an
// error carrying the command's stderr. A mount point or disk given again
// as "pool:SIZE" is grown in place with resize, never set again (that
// would allocate a new volume). VM scripts wait for the guest agent to
// answer a ping (Options.AgentWait), and pct exec runs with --keep-env 0.
//
// The package only carries out operations. It does not decide whether one
// is needed (a start of a running guest fails, as it does with pct): that
// is the reconcilers' job, using Get.
//
// internal/fake/pve is a fake pct and qm, as strict as Proxmox (every
// option checked against the PVE 8 or 9 schema), that tests run this
// package against; docs/proxmox.md says what a real host needs.
package pve
