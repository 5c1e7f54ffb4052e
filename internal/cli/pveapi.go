package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/pveapi"
)

// pveAPIFlags configure the pve-api backend (a cluster through its REST
// API). Flags the pve backend already uses for pct/qm (--pve-timeout,
// --pve-lock-retries) are not shared: the two backends' limits mean
// different things, so these are --pve-api-*. Most flags set opts
// directly; the token, the SSH addresses and the retries (where 0 means
// none, not the default) are turned into it by newPVEAPI.
type pveAPIFlags struct {
	opts      pveapi.Options
	TokenFile string
	Retries   int
	SSHAddrs  []string
}

func (p *pveAPIFlags) bindFlags(f *pflag.FlagSet) {
	o := &p.opts
	f.StringVar(&o.URL, "pve-url", os.Getenv("PHOENIX_PVE_URL"), "pve-api: API address, https://HOST:8006 (env PHOENIX_PVE_URL)")
	f.StringVar(&p.TokenFile, "pve-token-file", os.Getenv("PHOENIX_PVE_TOKEN_FILE"), "pve-api: file holding the API token USER@REALM!TOKENID=SECRET; must be mode 0600 (env PHOENIX_PVE_TOKEN_FILE)")
	f.StringVar(&o.CAFile, "pve-ca-file", os.Getenv("PHOENIX_PVE_CA_FILE"), "pve-api: PEM CA bundle to verify the API's certificate with, e.g. the cluster's pve-root-ca.pem (env PHOENIX_PVE_CA_FILE)")
	f.BoolVar(&o.Insecure, "pve-insecure", false, "pve-api: do not verify the API's TLS certificate (prefer --pve-ca-file)")
	f.StringVar(&o.DefaultNode, "pve-default-node", os.Getenv("PHOENIX_PVE_DEFAULT_NODE"), "pve-api: node for guests with no node field and no clone source (env PHOENIX_PVE_DEFAULT_NODE)")
	f.DurationVar(&o.Timeout, "pve-api-timeout", pveapi.DefaultTimeout, "pve-api: time limit of one API request")
	f.DurationVar(&o.TaskTimeout, "pve-api-task-timeout", pveapi.DefaultTaskTimeout, "pve-api: time limit of one task (create, clone, start, ...) and of one script in a VM")
	f.DurationVar(&o.AgentTimeout, "pve-api-agent-timeout", pveapi.DefaultAgentTimeout, "pve-api: how long to wait for a VM's guest agent to answer (agent/ping) before running a script in it")
	f.IntVar(&p.Retries, "pve-api-retries", pveapi.DefaultRetries, "pve-api: retries, with backoff, of a request refused by a lock or a transient 5xx (0: none)")
	f.IntVar(&o.NodeConcurrency, "pve-api-node-concurrency", pveapi.DefaultNodeConcurrency, "pve-api: writes (and their tasks) in flight per node")
	f.StringVar(&o.SSH.KeyFile, "pve-ssh-key", os.Getenv("PHOENIX_PVE_SSH_KEY"), "pve-api: private key for SSH to the nodes, for container scripts, lxc.* keys and setup, which the API cannot do (env PHOENIX_PVE_SSH_KEY)")
	f.StringVar(&o.SSH.KnownHostsFile, "pve-ssh-known-hosts", os.Getenv("PHOENIX_PVE_SSH_KNOWN_HOSTS"), "pve-api: known_hosts file with the nodes' host keys (default ~/.ssh/known_hosts; always checked)")
	f.StringVar(&o.SSH.User, "pve-ssh-user", pveapi.DefaultSSHUser, "pve-api: user for SSH to the nodes")
	f.StringArrayVar(&p.SSHAddrs, "pve-ssh-addr", nil, "pve-api: NODE=HOST:PORT for SSH to a node (repeatable; default: the node's cluster address, port 22)")
	f.DurationVar(&o.TaskPoll, "pve-api-task-poll", pveapi.DefaultTaskPoll, "pve-api: how often a running task is polled")
	f.DurationVar(&o.Backoff, "pve-api-backoff", pveapi.DefaultBackoff, "pve-api: first wait before a retry (doubles each time)")
	for _, n := range []string{"pve-api-task-poll", "pve-api-backoff"} {
		_ = f.MarkHidden(n) // tuning for tests against the fake cluster
	}
}

// configChecker is a backend that can refuse, before anything runs, a
// desired state it cannot carry out (pve-api: what no API token may do).
type configChecker interface {
	CheckConfig(cfg *api.Config) error
}

// newPVEAPI builds the pve-api backend. Problems with the flags or the
// files they name are usage errors (exit 2). notice gets the warnings about
// a plain-http URL or verification turned off.
func newPVEAPI(o *options, notice io.Writer) (hypervisor.Host, error) {
	p := &o.pveAPI
	if p.opts.URL == "" {
		return nil, usageErr("--backend pve-api needs --pve-url (https://HOST:8006)")
	}
	if p.TokenFile == "" {
		return nil, usageErr("--backend pve-api needs --pve-token-file (a file of mode 0600 holding USER@REALM!TOKENID=SECRET)")
	}
	tok, err := pveapi.LoadToken(p.TokenFile)
	if err != nil {
		return nil, usageErr("--pve-token-file: %v", err)
	}
	addrs := map[string]string{}
	for _, a := range p.SSHAddrs {
		node, addr, ok := strings.Cut(a, "=")
		if !ok || node == "" || addr == "" {
			return nil, usageErr("--pve-ssh-addr %q: want NODE=HOST:PORT", a)
		}
		addrs[node] = addr
	}
	opts := p.opts
	opts.Token = tok
	opts.Retries = p.Retries
	if opts.Retries == 0 {
		opts.Retries = -1 // pveapi reads 0 as "default"
	}
	opts.ScriptsDir = o.ScriptsDir
	opts.SSH.Addrs = addrs
	h, err := pveapi.New(opts)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if opts.PlainHTTP() {
		fmt.Fprintf(notice, "phoenix: warning: --pve-url %s is plain http: the API token crosses the network unencrypted (use http only for a test cluster on loopback)\n", opts.URL)
	}
	if opts.Insecure {
		fmt.Fprintln(notice, "phoenix: warning: --pve-insecure: the API's TLS certificate is not verified")
	}
	return h, nil
}
