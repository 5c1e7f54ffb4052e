package pveapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// maxAgentInput is the most the API passes to the guest agent as a
// command's input-data.
const maxAgentInput = 60 << 10

// Run runs a script, or a health check's command, for a guest (see
// guest.Runner): in a container with pct exec on its node over SSH (the
// API has no exec for containers), in a VM through the API's guest agent
// endpoints, a host-side script on the guest's node over SSH.
func (h *Host) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: %s %q: %w", kind, id, guest.What(s), s.Name, err)
	}
	r := &guest.Runner{ScriptsDir: h.opts.ScriptsDir,
		Container: sshContainer{h, loc}, Agent: apiAgent{h, loc}, Node: sshNode{h, loc},
		AgentWait: h.opts.AgentTimeout, AgentPoll: h.opts.TaskPoll, AgentHint: ", or raise --pve-api-agent-timeout",
		MaxAgentInput: maxAgentInput}
	if err := r.Run(ctx, kind, id, s); err != nil {
		return fmt.Errorf("%s %s: %s %q on node %s: %w", kind, id, guest.What(s), s.Name, loc.node, err)
	}
	return nil
}

// sshContainer is the container transport: pct exec on the container's
// node over SSH; a file goes in as the stdin of install(1).
type sshContainer struct {
	h   *Host
	loc *location
}

func (c sshContainer) Push(ctx context.Context, id api.ID, f guest.File) error {
	data, err := f.Content()
	if err != nil {
		return err
	}
	return c.exec(ctx, id, []string{"install", "-m", f.Perms(), "/dev/stdin", f.Dest}, data)
}

func (c sshContainer) Exec(ctx context.Context, id api.ID, argv []string) error {
	return c.exec(ctx, id, argv, nil)
}

func (c sshContainer) exec(ctx context.Context, id api.ID, argv []string, stdin []byte) error {
	if c.h.ssh == nil {
		return c.h.needSSH("running commands in a container", id)
	}
	_, err := c.h.ssh.run(ctx, c.loc.node, append([]string{"pct", "exec", id.String(), "--"}, argv...), stdin)
	return err
}

// apiAgent is the VM transport: the API's agent/ping, agent/exec and
// agent/exec-status. The endpoints are called directly rather than
// through a client library's AgentExec, which would drop the API's error
// ("QEMU guest agent is not running").
type apiAgent struct {
	h   *Host
	loc *location
}

func (a apiAgent) Ping(ctx context.Context, _ api.ID) error {
	return a.h.c.call(ctx, http.MethodPost, a.loc.base+"/agent/ping", nil, nil)
}

func (a apiAgent) Exec(ctx context.Context, _ api.ID, argv []string, stdin []byte) (*guest.AgentReply, error) {
	params := map[string]any{"command": argv}
	if stdin != nil {
		params["input-data"] = string(stdin)
	}
	var started agentStarted
	p := a.loc.base + "/agent/exec"
	if err := a.h.c.retry(ctx, false, func() error { return a.h.c.call(ctx, http.MethodPost, p, params, &started) }); err != nil {
		return nil, err
	}
	if started.PID == nil {
		// A POST answered null: nothing was started.
		return nil, fmt.Errorf("POST %s: answer has no pid of the started command", p)
	}
	status := fmt.Sprintf("%s/agent/exec-status?pid=%d", a.loc.base, int(*started.PID))
	reply := &guest.AgentReply{Command: displayArgv(argv), Via: "guest agent", Waited: a.h.opts.TaskTimeout}
	deadline := time.Now().Add(a.h.opts.TaskTimeout)
	for {
		var st agentStatus
		if err := a.h.c.get(ctx, status, &st); err != nil {
			return nil, err
		}
		if st.Exited == 1 {
			reply.Exited = true
			reply.Output = []byte(st.OutData + st.ErrData)
			if st.ExitCode != nil {
				reply.ExitCode = new(int(*st.ExitCode))
			}
			if st.Signal != nil {
				reply.Signal = new(int(*st.Signal))
			}
			return reply, nil
		}
		if time.Now().After(deadline) {
			return reply, nil
		}
		if err := retry.Sleep(ctx, a.h.opts.TaskPoll); err != nil {
			return nil, err
		}
	}
}

// agentStatus is GET .../agent/exec-status.
type agentStatus struct {
	Exited   flexInt  `json:"exited"`
	ExitCode *flexInt `json:"exitcode"`
	Signal   *flexInt `json:"signal"`
	OutData  string   `json:"out-data"`
	ErrData  string   `json:"err-data"`
}

// agentStarted is POST .../agent/exec.
type agentStarted struct {
	PID *flexInt `json:"pid"`
}

func (a *agentStarted) check() error {
	if a.PID == nil || *a.PID <= 0 {
		return errors.New("no pid of the started command")
	}
	return nil
}

// sshNode runs the old tree's host-side scripts on the guest's node over
// SSH: they drive the guest with pct, which works only where the guest
// is. The script runs from the same path under the scripts folder on the
// node, which the operator keeps identical on every node; phoenix checks
// that it is there, executable and not writable by group or others before
// it runs it, with its arguments and no interpreter of its choosing.
type sshNode struct {
	h   *Host
	loc *location
}

func (n sshNode) RunScript(ctx context.Context, id api.ID, c *guest.Checked, args []string) error {
	if n.h.ssh == nil {
		return fmt.Errorf("%s is a host-side script (the old tool's layout): it runs on the Proxmox node that holds guest %s, and the API cannot run commands on a node; "+
			"give phoenix SSH access to the nodes with --pve-ssh-key and --pve-ssh-known-hosts and it runs the script there: %w", c.Rel, id, ErrNeedSSH)
	}
	root, err := filepath.Abs(n.h.opts.ScriptsDir)
	if err != nil {
		return fmt.Errorf("scripts folder: %w", err)
	}
	remote := path.Join(filepath.ToSlash(root), filepath.ToSlash(c.Rel))
	if err := n.checkRemote(ctx, root, remote); err != nil {
		return err
	}
	_, err = n.h.ssh.run(ctx, n.loc.node, append([]string{remote}, args...), nil)
	return err
}

// checkRemote makes sure the script on the node is a regular file root
// may run and only root may change.
func (n sshNode) checkRemote(ctx context.Context, root, remote string) error {
	node := n.loc.node
	out, err := n.h.ssh.run(ctx, node, []string{"stat", "-L", "-c", "%a %F", "--", remote}, nil)
	var re *RemoteError
	if errors.As(err, &re) && strings.Contains(re.Output, "No such file") {
		return fmt.Errorf("script %s does not exist on node %s; keep the scripts folder %s the same on every node: %w", remote, node, root, err)
	}
	if err != nil {
		return fmt.Errorf("script %s on node %s: %w", remote, node, err)
	}
	perm, kind, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	mode, perr := strconv.ParseUint(perm, 8, 32)
	switch {
	case perr != nil:
		return fmt.Errorf("script %s on node %s: cannot read `stat` output %q", remote, node, out)
	case kind != "regular file":
		return fmt.Errorf("script %s on node %s is a %s, not a regular file", remote, node, kind)
	case mode&0o111 == 0:
		return fmt.Errorf("script %s on node %s is not executable (mode %04o); chmod +x it there", remote, node, mode)
	case mode&0o022 != 0:
		return fmt.Errorf("script %s on node %s is writable by group or others (mode %04o); refusing to run it as root (chmod go-w it there)", remote, node, mode)
	}
	return nil
}

// setupStepRE is a setup step name: a file name in setup/, without .sh.
var setupStepRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// RunSetupStep runs <ScriptsDir>/setup/<step>.sh on every node of the
// cluster over SSH, in node-name order, with the step's settings as a JSON
// file given as its first argument. Every node must be online: host setup
// that reached only some nodes would leave the cluster uneven.
func (h *Host) RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if err := h.runSetupStep(ctx, step, settings); err != nil {
		return fmt.Errorf("setup step %q: %w", step, err)
	}
	return nil
}

func (h *Host) runSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if !setupStepRE.MatchString(step) {
		return errors.New("not a step name: want letters, digits, '.', '_' or '-'")
	}
	if h.opts.ScriptsDir == "" {
		return errors.New("no scripts folder configured (--scripts-dir)")
	}
	if h.ssh == nil {
		return fmt.Errorf("host setup on the cluster's nodes: the API cannot run commands on a node; "+
			"give phoenix SSH access with --pve-ssh-key and --pve-ssh-known-hosts: %w", ErrNeedSSH)
	}
	c, err := guest.Check(h.opts.ScriptsDir, filepath.Join(h.opts.ScriptsDir, "setup", step+".sh"))
	if err != nil {
		return err
	}
	script, err := os.ReadFile(c.Real)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	nodes, err := h.nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range sortedKeys(nodes) {
		if !nodes[n] {
			return fmt.Errorf("node %s is offline; setup must reach every node", n)
		}
	}
	dest := "/tmp/phoenix-setup-" + step + ".sh"
	for _, n := range sortedKeys(nodes) {
		for _, f := range []guest.File{{Data: script, Dest: dest, Mode: 0o600}, {Data: settings, Dest: dest + ".json", Mode: 0o600}} {
			if _, err := h.ssh.run(ctx, n, []string{"install", "-m", f.Perms(), "/dev/stdin", f.Dest}, f.Data); err != nil {
				return fmt.Errorf("node %s: copy %s: %w", n, f.Dest, err)
			}
		}
		if _, err := h.ssh.run(ctx, n, slices.Concat(c.Interp, []string{dest, dest + ".json"}), nil); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
	}
	return nil
}
