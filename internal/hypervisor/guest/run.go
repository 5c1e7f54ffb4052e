package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// Runner runs hypervisor.Scripts over a backend's transports.
type Runner struct {
	// ScriptsDir is the scripts folder every script must live in.
	ScriptsDir string
	Container  Container
	Agent      Agent
	Node       Node
	// AgentWait is how long a VM script waits for the guest agent to
	// answer (a cloud image installs it a while after the VM started),
	// pinging every AgentPoll.
	AgentWait, AgentPoll time.Duration
	// AgentHint ends the message of an agent that never answered: the
	// backend's option that raises AgentWait.
	AgentHint string
	// MaxAgentInput is the most one file or input may hold on its way
	// through the guest agent.
	MaxAgentInput int
}

// Run runs s for guest id: a command or script inside the guest, or a
// host-side script on the guest's node. A container gets the script and
// the guest's spec pushed to Dest, private to root (the spec may hold
// secrets), and runs the script with the spec's path; a VM gets them
// through its guest agent, as the stdin of install(1). The error does not
// name the guest: the backend does, with where it ran.
func (r *Runner) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	if kind != api.KindLXC && kind != api.KindVM {
		return fmt.Errorf("unknown guest kind %q", kind)
	}
	if len(s.Command) == 0 && s.Path == "" {
		return errors.New("neither a script path nor a command (is a scripts folder configured? --scripts-dir)")
	}
	if len(s.Command) == 0 && s.OnHost {
		c, err := Check(r.ScriptsDir, s.Path)
		if err != nil {
			return err
		}
		return r.Node.RunScript(ctx, id, c, s.Args)
	}
	if kind == api.KindVM {
		if err := r.waitAgent(ctx, id); err != nil {
			return err
		}
	}
	switch {
	case len(s.Command) > 0:
		return r.exec(ctx, kind, id, nil, s.Command)
	case s.Dir != "":
		return r.runInDir(ctx, kind, id, s)
	}
	return r.runScript(ctx, kind, id, s)
}

func (r *Runner) runScript(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	c, err := Check(r.ScriptsDir, s.Path)
	if err != nil {
		return err
	}
	spec := []byte(s.Spec)
	if len(spec) == 0 {
		spec = []byte("{}")
	}
	dest := Dest(s)
	files := []File{{Src: c.Real, Dest: dest, Mode: 0o600}, {Data: spec, Dest: dest + SpecSuffix, Mode: 0o600}}
	for _, f := range files {
		if err := r.push(ctx, kind, id, f); err != nil {
			return err
		}
	}
	return r.exec(ctx, kind, id, nil, append(slices.Clone(c.Interp), dest, dest+SpecSuffix))
}

// runInDir is the old tool's way of running an application script: the
// script and the files it sources (the common utilities, the LXC config)
// are copied into one folder in the guest, the script runs from there
// with its arguments, and the folder is removed.
func (r *Runner) runInDir(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	if err := CheckDir(s.Dir); err != nil {
		return err
	}
	c, err := Check(r.ScriptsDir, s.Path)
	if err != nil {
		return err
	}
	files := []File{{Src: c.Real, Dest: s.Dir + "/" + filepath.Base(s.Path), Mode: 0o755}}
	for _, b := range s.Beside {
		bc, err := Check(r.ScriptsDir, b)
		if err != nil {
			return err
		}
		files = append(files, File{Src: bc.Real, Dest: s.Dir + "/" + filepath.Base(b), Mode: 0o644})
	}
	for _, d := range s.Data {
		// Found missing before the guest is touched.
		if _, err := os.Stat(d); err != nil {
			return err
		}
		files = append(files, File{Src: d, Dest: s.Dir + "/" + filepath.Base(d), Mode: 0o600})
	}
	if err := r.exec(ctx, kind, id, nil, []string{"mkdir", "-p", "-m", "0700", s.Dir}); err != nil {
		return fmt.Errorf("make %s in the guest: %w", s.Dir, err)
	}
	defer func() {
		// Best effort, as the old tool: a leftover folder in /tmp is not
		// worth failing a run that worked.
		_ = r.exec(context.WithoutCancel(ctx), kind, id, nil, []string{"rm", "-rf", "--", s.Dir})
	}()
	for _, f := range files {
		if err := r.push(ctx, kind, id, f); err != nil {
			return err
		}
	}
	return r.exec(ctx, kind, id, nil, append([]string{files[0].Dest}, s.Args...))
}

// push puts f into the guest: the container transport's push, or for a
// VM install(1) run by the agent with the file as its stdin (there is no
// qm push).
func (r *Runner) push(ctx context.Context, kind api.Kind, id api.ID, f File) error {
	var err error
	if kind == api.KindLXC {
		err = r.Container.Push(ctx, id, f)
	} else {
		var data []byte
		if data, err = f.Content(); err == nil {
			if len(data) > r.MaxAgentInput {
				return fmt.Errorf("copy %s into the guest: %d bytes; the guest agent takes at most %d", f.Dest, len(data), r.MaxAgentInput)
			}
			err = r.exec(ctx, kind, id, data, []string{"install", "-m", f.Perms(), "/dev/stdin", f.Dest})
		}
	}
	if err != nil {
		return fmt.Errorf("copy %s into the guest: %w", f.Dest, err)
	}
	return nil
}

// exec runs argv in the guest with stdin (VMs only; a container's files
// are pushed).
func (r *Runner) exec(ctx context.Context, kind api.Kind, id api.ID, stdin []byte, argv []string) error {
	if kind == api.KindLXC {
		return r.Container.Exec(ctx, id, argv)
	}
	reply, err := r.Agent.Exec(ctx, id, argv, stdin)
	if err != nil {
		return agentHint(err)
	}
	return reply.Err()
}

// agentHint says what a VM needs when the error is about its agent.
func agentHint(err error) error {
	if strings.Contains(strings.ToLower(err.Error()), "guest agent") {
		return fmt.Errorf("%w (the VM needs agent: 1 in its config and qemu-guest-agent running in it)", err)
	}
	return err
}

// waitAgent pings the VM's guest agent until it answers or AgentWait runs
// out. Only an agent that does not answer yet is waited for; no agent
// configured, or a stopped VM, fails at once.
func (r *Runner) waitAgent(ctx context.Context, id api.ID) error {
	deadline := time.Now().Add(r.AgentWait)
	for {
		err := r.Agent.Ping(ctx, id)
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "guest agent is not running") {
			return agentHint(err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the guest agent did not answer within %s (%w): install qemu-guest-agent in the VM, e.g. with cloud-init "+
				"(packages: [qemu-guest-agent], runcmd: [systemctl start qemu-guest-agent]), and set agent: 1 in its config%s",
				r.AgentWait, err, r.AgentHint)
		}
		if werr := retry.Sleep(ctx, min(r.AgentPoll, time.Until(deadline)+time.Millisecond)); werr != nil {
			return fmt.Errorf("waiting for the guest agent: %w", werr)
		}
	}
}
