package pveapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// maxAgentInput is the most the API passes to the guest agent as a
// command's input-data.
const maxAgentInput = 60 << 10

// Run runs a script, or a health check's command, inside a running guest:
// in a container with pct exec on its node over SSH (the API has no exec
// for containers), in a VM through the guest agent endpoints of the API.
// The script and the guest's JSON spec are copied in first (install -m
// 0600 from stdin: the spec may hold secrets) to the same paths the pve
// backend uses, and the script runs with the spec's path as argument.
func (h *Host) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	what := string(s.Kind) + " script"
	if len(s.Command) > 0 {
		what = string(s.Kind) + " command"
	}
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: %s %q: %w", kind, id, what, s.Name, err)
	}
	if kind == api.KindVM && (len(s.Command) > 0 || s.Path != "") {
		err = h.waitAgent(ctx, loc)
	}
	switch {
	case err != nil:
	case len(s.Command) > 0:
		err = h.inGuest(ctx, kind, id, loc, nil, s.Command)
	case s.Path != "" && s.OnHost:
		// The old tree's host-side scripts call pct on the machine they run
		// on; from here that is not the guest's node.
		err = errors.New("runs on the Proxmox host itself (the old tool's layout); use --backend pve on the node, or move it into the guest")
	case s.Path != "" && s.Dir != "":
		err = h.runInDir(ctx, kind, id, loc, s)
	case s.Path != "":
		err = h.runScript(ctx, kind, id, loc, s)
	default:
		err = errors.New("neither a script path nor a command (is a scripts folder configured? --scripts-dir)")
	}
	if err != nil {
		return fmt.Errorf("%s %s: %s %q on node %s: %w", kind, id, what, s.Name, loc.node, err)
	}
	return nil
}

var safeNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (h *Host) runScript(ctx context.Context, kind api.Kind, id api.ID, loc *location, s hypervisor.Script) error {
	script, interp, err := readScript(s.Path)
	if err != nil {
		return err
	}
	spec := []byte(s.Spec)
	if len(spec) == 0 {
		spec = []byte("{}")
	}
	dest := "/tmp/phoenix-" + string(s.Kind) + "-" + safeNameRE.ReplaceAllString(s.Name, "_")
	specDest := dest + ".spec.json"
	for _, f := range []struct {
		data []byte
		dest string
	}{{script, dest}, {spec, specDest}} {
		if err := h.inGuest(ctx, kind, id, loc, f.data, []string{"install", "-m", "0600", "/dev/stdin", f.dest}); err != nil {
			return fmt.Errorf("copy %s into the guest: %w", f.dest, err)
		}
	}
	return h.inGuest(ctx, kind, id, loc, nil, append(append(interp, dest), specDest))
}

// runInDir copies the script, the scripts beside it and the data files
// into one folder of the guest, runs the script from there with its
// arguments and removes the folder: the old tool's way (see the pve
// backend).
func (h *Host) runInDir(ctx context.Context, kind api.Kind, id api.ID, loc *location, s hypervisor.Script) error {
	if !guestDirRE.MatchString(s.Dir) {
		return fmt.Errorf("folder %q in the guest: want /tmp/<name> or similar", s.Dir)
	}
	type file struct {
		data        []byte
		dest, perms string
	}
	script, _, err := readScript(s.Path)
	if err != nil {
		return err
	}
	files := []file{{script, s.Dir + "/" + filepath.Base(s.Path), "0755"}}
	for _, b := range s.Beside {
		data, _, err := readScript(b)
		if err != nil {
			return err
		}
		files = append(files, file{data, s.Dir + "/" + filepath.Base(b), "0644"})
	}
	for _, d := range s.Data {
		data, err := os.ReadFile(d)
		if err != nil {
			return err
		}
		files = append(files, file{data, s.Dir + "/" + filepath.Base(d), "0600"})
	}
	if err := h.inGuest(ctx, kind, id, loc, nil, []string{"mkdir", "-p", "-m", "0700", s.Dir}); err != nil {
		return fmt.Errorf("make %s in the guest: %w", s.Dir, err)
	}
	defer func() {
		_ = h.inGuest(context.WithoutCancel(ctx), kind, id, loc, nil, []string{"rm", "-rf", "--", s.Dir})
	}()
	for _, f := range files {
		if err := h.inGuest(ctx, kind, id, loc, f.data, []string{"install", "-m", f.perms, "/dev/stdin", f.dest}); err != nil {
			return fmt.Errorf("copy %s into the guest: %w", f.dest, err)
		}
	}
	return h.inGuest(ctx, kind, id, loc, nil, append([]string{files[0].dest}, s.Args...))
}

var guestDirRE = regexp.MustCompile(`^/(tmp|var/tmp|run|root)/[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// inGuest runs argv inside the guest with stdin.
func (h *Host) inGuest(ctx context.Context, kind api.Kind, id api.ID, loc *location, stdin []byte, argv []string) error {
	if kind == api.KindLXC {
		if h.ssh == nil {
			return h.needSSH("running commands in a container", id)
		}
		_, err := h.ssh.run(ctx, loc.node, append([]string{"pct", "exec", id.String(), "--"}, argv...), stdin)
		return err
	}
	return h.agentExec(ctx, loc, stdin, argv)
}

// waitAgent waits until the VM's guest agent answers agent/ping, up to
// Options.AgentTimeout: a VM made from a cloud image starts its agent only
// once cloud-init has installed it, a while after the VM started.
func (h *Host) waitAgent(ctx context.Context, loc *location) error {
	path := loc.base + "/agent/ping"
	deadline := time.Now().Add(h.opts.AgentTimeout)
	for {
		err := h.c.call(ctx, http.MethodPost, path, nil, nil)
		if err == nil {
			return nil
		}
		var ae *APIError
		if !errors.As(err, &ae) || !strings.Contains(ae.Message, "guest agent is not running") {
			if errors.As(err, &ae) && strings.Contains(ae.Message, "agent") {
				return fmt.Errorf("%w (the VM needs agent: 1 in its config and qemu-guest-agent running in it)", err)
			}
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the guest agent did not answer within %s (%v): install qemu-guest-agent in the VM, e.g. with cloud-init "+
				"(packages: [qemu-guest-agent], runcmd: [systemctl start qemu-guest-agent]), or raise --pve-api-agent-timeout", h.opts.AgentTimeout, err)
		}
		if err := hypervisor.Sleep(ctx, h.opts.TaskPoll); err != nil {
			return err
		}
	}
}

// agentExec runs argv in a VM through the guest agent and waits for it.
// The endpoint is called directly rather than through go-proxmox's
// AgentExec, which drops the API's error (it reports "no pid returned"
// instead of "QEMU guest agent is not running").
func (h *Host) agentExec(ctx context.Context, loc *location, stdin []byte, argv []string) error {
	if len(stdin) > maxAgentInput {
		return fmt.Errorf("%d bytes of input; the guest agent takes at most %d", len(stdin), maxAgentInput)
	}
	params := map[string]any{"command": argv}
	if stdin != nil {
		params["input-data"] = string(stdin)
	}
	var started agentStarted
	path := loc.base + "/agent/exec"
	err := h.c.retry(ctx, false, func() error { return h.c.call(ctx, http.MethodPost, path, params, &started) })
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && strings.Contains(ae.Message, "agent") {
			return fmt.Errorf("%w (the VM needs agent: 1 in its config and qemu-guest-agent running in it)", err)
		}
		return err
	}
	if started.PID == nil {
		// A POST answered null: nothing was started.
		return fmt.Errorf("POST %s: answer has no pid of the started command", path)
	}
	status := fmt.Sprintf("%s/agent/exec-status?pid=%d", loc.base, int(*started.PID))
	deadline := time.Now().Add(h.opts.TaskTimeout)
	for {
		var st agentStatus
		if err := h.c.get(ctx, status, &st); err != nil {
			return err
		}
		if st.Exited == 1 {
			out := tail([]byte(st.OutData + st.ErrData))
			switch {
			case st.ExitCode == nil:
				return fmt.Errorf("`%s` (guest agent): killed by signal %v: %s", displayArgv(argv), st.Signal, out)
			case *st.ExitCode != 0:
				return fmt.Errorf("`%s` (guest agent): exit %d: %s", displayArgv(argv), int(*st.ExitCode), out)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("`%s` (guest agent): still running after %s", displayArgv(argv), h.opts.TaskTimeout)
		}
		if err := hypervisor.Sleep(ctx, h.opts.TaskPoll); err != nil {
			return err
		}
	}
}

// agentStatus is GET .../agent/exec-status.
type agentStatus struct {
	Exited   flexInt  `json:"exited"`
	ExitCode *flexInt `json:"exitcode"`
	Signal   any      `json:"signal"`
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

// readScript reads a script and finds its interpreter. It refuses a
// script group or others may write: it runs as root in a guest or on a
// node, so whoever can change it would own both.
func readScript(path string) ([]byte, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("script: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("script %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, nil, fmt.Errorf("script %s is writable by group or others (mode %04o); refusing to run it as root (chmod go-w %s)",
			path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("script: %w", err)
	}
	return data, interpreter(data), nil
}

// interpreter is the #! line's program and argument, else sh.
func interpreter(script []byte) []string {
	line, _ := bufio.NewReader(bytes.NewReader(script)).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "#!")
	if !ok {
		return []string{"sh"}
	}
	f := strings.Fields(rest)
	switch len(f) {
	case 0:
		return []string{"sh"}
	case 1:
		return f
	}
	// The kernel passes everything after the program as one argument.
	return []string{f[0], strings.Join(f[1:], " ")}
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
	root, err := filepath.EvalSymlinks(h.opts.ScriptsDir)
	if err != nil {
		return fmt.Errorf("scripts folder: %w", err)
	}
	path, err := filepath.EvalSymlinks(filepath.Join(root, "setup", step+".sh"))
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	if rel, err := filepath.Rel(root, path); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("script %s resolves outside the scripts folder %s", path, root)
	}
	script, interp, err := readScript(path)
	if err != nil {
		return err
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
		for _, f := range []struct {
			data []byte
			dest string
		}{{script, dest}, {settings, dest + ".json"}} {
			if _, err := h.ssh.run(ctx, n, []string{"install", "-m", "0600", "/dev/stdin", f.dest}, f.data); err != nil {
				return fmt.Errorf("node %s: copy %s: %w", n, f.dest, err)
			}
		}
		if _, err := h.ssh.run(ctx, n, append(append(interp, dest), dest+".json"), nil); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
	}
	return nil
}
