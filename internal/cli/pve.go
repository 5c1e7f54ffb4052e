package cli

import (
	"io"
	"os/exec"
	"time"

	"github.com/spf13/pflag"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/pve"
)

// pveFlags configure the pct/qm backend.
type pveFlags struct {
	Timeout     time.Duration
	LockRetries int
	LockBackoff time.Duration
	PVEEtc      string
	LXCConfDir  string
	LXCLockDir  string
	AgentWait   time.Duration
	PerGiB      time.Duration
	ListTTL     time.Duration
}

func (p *pveFlags) bindFlags(f *pflag.FlagSet) {
	f.DurationVar(&p.Timeout, "pve-timeout", pve.DefaultTimeout, "pve: time limit of one pct/qm command (a feature script is one command)")
	f.IntVar(&p.LockRetries, "pve-lock-retries", pve.DefaultLockRetries, "pve: how often a command refused by a guest lock is retried")
	f.DurationVar(&p.LockBackoff, "pve-lock-backoff", pve.DefaultLockBackoff, "pve: first wait before retrying a locked guest (doubles each time)")
	f.StringVar(&p.PVEEtc, "pve-etc", envOr("PHOENIX_PVE_ETC", pve.DefaultPVEEtc), "pve: Proxmox's cluster file system, where guest configs (lxc/, qemu-server/) and storage.cfg are read (env PHOENIX_PVE_ETC)")
	f.DurationVar(&p.AgentWait, "pve-agent-wait", pve.DefaultAgentWait, "pve: how long a VM script waits for the VM's guest agent to answer after a start")
	f.DurationVar(&p.PerGiB, "pve-timeout-per-gib", pve.DefaultPerGiB, "pve: clones, disk imports and resizes get at least this long per GiB of disk, and a clone waits that long for its source's lock")
	f.DurationVar(&p.ListTTL, "pve-list-ttl", pve.DefaultListTTL, "pve: how long one `pct list`/`qm list` answers for the running state of every guest")
	f.StringVar(&p.LXCConfDir, "pve-lxc-conf-dir", envOr("PHOENIX_PVE_LXC_CONF_DIR", ""), "pve: folder of the container configs, for lxc.* keys (default <pve-etc>/lxc)")
	f.StringVar(&p.LXCLockDir, "pve-lxc-lock-dir", envOr("PHOENIX_PVE_LXC_LOCK_DIR", pve.DefaultLXCLockDir), "pve: folder of pct's config locks")
	for _, n := range []string{"pve-lxc-conf-dir", "pve-lxc-lock-dir", "pve-list-ttl"} {
		_ = f.MarkHidden(n) // for tests against the fake; real hosts use the defaults
	}
}

// newPVE builds the pct/qm backend. pct and qm are found on PATH; without
// them this is not a Proxmox host, which is a usage error (exit 2) rather
// than a failure of the first action.
func newPVE(o *options, notice io.Writer) (hypervisor.Host, error) {
	for _, tool := range []string{"pct", "qm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, usageErr("%s not found: is this a Proxmox host? (--backend pve runs pct and qm; use --backend sim to try phoenix elsewhere)", tool)
		}
	}
	intents, err := o.intents()
	if err != nil {
		return nil, err
	}
	return pve.New(pve.Options{
		Intents:       intents,
		Notice:        noticer(notice),
		Timeout:       o.pve.Timeout,
		ScriptsDir:    o.ScriptsDir,
		PVEEtc:        o.pve.PVEEtc,
		AgentWait:     o.pve.AgentWait,
		TimeoutPerGiB: o.pve.PerGiB,
		ListTTL:       o.pve.ListTTL,
		LXCConfDir:    o.pve.LXCConfDir,
		LXCLockDir:    o.pve.LXCLockDir,
		LockRetries:   o.pve.LockRetries,
		LockBackoff:   o.pve.LockBackoff,
	}), nil
}
