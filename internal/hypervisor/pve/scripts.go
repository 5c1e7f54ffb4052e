package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// maxAgentInput is what qm guest exec --pass-stdin accepts.
const maxAgentInput = 1 << 20

// agentPoll is the pause between guest agent pings.
var agentPoll = 2 * time.Second

// Run runs a script, or a health check's command, for a guest (see
// guest.Runner): in a container with pct push and pct exec, in a VM with
// qm guest exec, a host-side script on this node.
func (h *Host) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	if err := h.scripts().Run(ctx, kind, id, s); err != nil {
		return fmt.Errorf("%s %s: %s %q: %w", kind, id, guest.What(s), s.Name, err)
	}
	return nil
}

func (h *Host) scripts() *guest.Runner {
	return &guest.Runner{ScriptsDir: h.opts.ScriptsDir, Container: pct{h}, Agent: qmAgent{h}, Node: local{h},
		AgentWait: h.opts.AgentWait, AgentPoll: agentPoll, MaxAgentInput: maxAgentInput}
}

// pct is the container transport: pct push and pct exec.
type pct struct{ h *Host }

func (p pct) Push(ctx context.Context, id api.ID, f guest.File) error {
	src := f.Src
	if src == "" {
		pattern := "phoenix-push-*"
		if strings.HasSuffix(f.Dest, guest.SpecSuffix) {
			pattern = "phoenix-spec-*.json"
		}
		tmp, err := writeTemp(pattern, f.Data)
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		src = tmp
	}
	argv := []string{p.h.opts.Pct, "push", id.String(), src, f.Dest, "--perms", f.Perms()}
	res, err := p.h.run(ctx, argv, runOpts{})
	if err != nil {
		return err
	}
	// pct push exits 0 when its write into the container fails; it prints
	// nothing when it works.
	if out := guest.Tail(res.output); out != "" {
		return fmt.Errorf("`%s` exited 0 but reported an error: %s", formatArgv(argv), out)
	}
	return nil
}

func (p pct) Exec(ctx context.Context, id api.ID, argv []string) error {
	// --keep-env 0: phoenix's own environment (credentials, proxies) stays
	// out of the container. pct exec's exit code is the command's.
	full := append([]string{p.h.opts.Pct, "exec", id.String(), "--keep-env", "0", "--"}, argv...)
	_, err := p.h.run(ctx, full, runOpts{inGuest: true})
	return err
}

// qmAgent is the VM transport: qm guest cmd and qm guest exec.
type qmAgent struct{ h *Host }

func (q qmAgent) Ping(ctx context.Context, id api.ID) error {
	_, err := q.h.run(ctx, []string{q.h.opts.Qm, "guest", "cmd", id.String(), "ping"}, runOpts{})
	return err
}

func (q qmAgent) Exec(ctx context.Context, id api.ID, command []string, stdin []byte) (*guest.AgentReply, error) {
	// qm's own wait for the command defaults to 30s; give it the whole
	// command timeout instead.
	secs := max(int(q.h.opts.Timeout.Seconds()), 1)
	argv := []string{q.h.opts.Qm, "guest", "exec", id.String()}
	if stdin != nil {
		argv = append(argv, "--pass-stdin", "1")
	}
	argv = append(append(argv, "--timeout", strconv.Itoa(secs), "--"), command...)
	res, err := q.h.run(ctx, argv, runOpts{stdin: stdin})
	if err != nil {
		return nil, err
	}
	var st guest.ExecStatus
	if err := json.Unmarshal(res.stdout, &st); err != nil {
		return nil, fmt.Errorf("`%s`: cannot read its reply: %w: %s", formatArgv(argv), err, guest.Tail(res.stdout))
	}
	return st.Reply(formatArgv(argv), "", time.Duration(secs)*time.Second), nil
}

// local runs the old tree's host-side scripts here, on the node: the
// guest is on this node by definition.
type local struct{ h *Host }

func (l local) RunScript(ctx context.Context, _ api.ID, c *guest.Checked, args []string) error {
	_, err := l.h.run(ctx, slices.Concat(c.Interp, []string{c.Real}, args), runOpts{inGuest: true})
	return err
}

// writeTemp writes data to a new file readable only by us.
func writeTemp(pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
