package pveapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	deadline := time.Now().Add(a.h.opts.TaskTimeout)
	for {
		var st guest.ExecStatus
		if err := a.h.c.get(ctx, status, &st); err != nil {
			return nil, err
		}
		if st.Exited || time.Now().After(deadline) {
			return st.Reply(displayArgv(argv), "guest agent", a.h.opts.TaskTimeout), nil
		}
		if err := retry.Sleep(ctx, a.h.opts.TaskPoll); err != nil {
			return nil, err
		}
	}
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
